import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authApp, browser, codeOf, CookieJar, SAME_ORIGIN, signIn, smtpServer, STRONG, tokenIn, uniqueEmail, type AuthTest } from './helpers.ts';

/**
 * Verification and reset mail over a real SMTP server (smtp-server, in this process): the links
 * work once, and nothing personal — the address, the password, a link token, a session token —
 * reaches the service's log or an error answer.
 */
let t: AuthTest;
let smtp: Awaited<ReturnType<typeof smtpServer>>;
beforeAll(async () => {
  smtp = await smtpServer();
  t = await authApp({ CUSTOS_SMTP_URL: smtp.url, CUSTOS_MAIL_FROM: 'Acme Outdoor <no-reply@shop.example>' });
});
afterAll(async () => {
  await t.close();
  await smtp.close();
});

const mailTo = async (email: string, subject: RegExp) => {
  await t.runtime.identity.mail.idle();
  const found = smtp.received.filter((m) => m.to.includes(email) && subject.test(m.body)).at(-1);
  if (found === undefined) throw new Error('no such mail received');
  return found.body;
};

describe('mail over SMTP', () => {
  it('verifies an address with the link from the mail, once', async () => {
    const email = uniqueEmail();
    const password = 'sea shanties at the harbour wall';
    expect((await t.app.inject({ method: 'POST', url: '/v1/auth/signup', headers: SAME_ORIGIN, payload: { email, password } })).statusCode).toBe(202);
    const body = await mailTo(email, /Confirm your email address/);
    expect(body).toMatch(/^From: Acme Outdoor <no-reply@shop\.example>/m);
    expect(body).toContain('https://shop.example/account/verify-email#token=');
    const { jar } = await signIn(t, email, password);
    expect((await browser(t, jar, 'GET', '/v1/auth/session')).json()).toMatchObject({ account: { email_verified: false } });
    const token = tokenIn(body);
    const verify = () => t.app.inject({ method: 'POST', url: '/v1/auth/verify-email', headers: SAME_ORIGIN, payload: { token } });
    expect((await verify()).statusCode).toBe(200);
    expect(codeOf(await verify())).toBe('IDENTITY_TOKEN_REUSED');
    expect((await browser(t, jar, 'GET', '/v1/auth/session')).json()).toMatchObject({ account: { email_verified: true } });
    // A link for verification is no good for a reset.
    const cross = await t.app.inject({ method: 'POST', url: '/v1/auth/password-reset/confirm', headers: SAME_ORIGIN, payload: { token, password: 'a new and long passphrase' } });
    expect(codeOf(cross)).toBe('IDENTITY_TOKEN_INVALID');
  });

  it('resets a password with the link from the mail and tells the owner afterwards', async () => {
    const email = uniqueEmail();
    await t.app.inject({ method: 'POST', url: '/v1/auth/signup', headers: SAME_ORIGIN, payload: { email, password: STRONG } });
    await t.app.inject({ method: 'POST', url: '/v1/auth/password-reset', headers: SAME_ORIGIN, payload: { email } });
    const body = await mailTo(email, /Reset your Acme Outdoor password/);
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/auth/password-reset/confirm',
      headers: SAME_ORIGIN,
      payload: { token: tokenIn(body), password: 'lighthouse keepers count the waves' },
    });
    expect(res.statusCode).toBe(200);
    expect(await mailTo(email, /password was changed/)).toContain('every device was signed out');
    expect((await signIn(t, email, 'lighthouse keepers count the waves')).res.statusCode).toBe(200);
  });

  it('limits reset mails to one address (no mailbox flooding), still answering 202', async () => {
    const email = uniqueEmail();
    await t.app.inject({ method: 'POST', url: '/v1/auth/signup', headers: SAME_ORIGIN, payload: { email, password: STRONG } });
    for (let i = 0; i < 12; i++)
      expect((await t.app.inject({ method: 'POST', url: '/v1/auth/password-reset', headers: SAME_ORIGIN, payload: { email } })).statusCode).toBe(202);
    await t.runtime.identity.mail.idle();
    expect(smtp.received.filter((m) => m.to.includes(email) && /Reset your/.test(m.body))).toHaveLength(5);
  });
});

describe('nothing personal in logs or answers', () => {
  it('logs no address, password or token along a whole sign-up, sign-in, failure and reset', async () => {
    const email = uniqueEmail('grace.hopper');
    const password = 'compilers were my idea all along';
    const jar = new CookieJar();
    await browser(t, jar, 'POST', '/v1/auth/signup', { email, password });
    const verify = tokenIn(await mailTo(email, /Confirm/));
    await browser(t, jar, 'POST', '/v1/auth/verify-email', { token: verify });
    const wrong = await browser(t, jar, 'POST', '/v1/auth/signin', { email, password: 'not my password, sorry' });
    expect(wrong.body).not.toContain(email);
    expect(wrong.body).not.toContain('not my password');
    await browser(t, jar, 'POST', '/v1/auth/signin', { email, password });
    const session = jar.get('__Host-custos_session')!;
    await browser(t, jar, 'GET', '/v1/me');
    await browser(t, jar, 'POST', '/v1/auth/password-reset', { email });
    const reset = tokenIn(await mailTo(email, /Reset/));
    const bad = await browser(t, jar, 'POST', '/v1/auth/signup', { email: 'not-an-address', password });
    expect(bad.body).not.toContain('not-an-address');
    await t.runtime.identity.mail.idle();
    const logs = t.logs.join('\n');
    expect(logs.length).toBeGreaterThan(0);
    for (const secret of [email, 'grace.hopper', password, 'not my password', verify, reset, session, session.slice(3)]) expect(logs).not.toContain(secret);
  });
});
