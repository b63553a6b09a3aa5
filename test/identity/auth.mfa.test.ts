import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  authApp,
  browser,
  codeOf,
  CookieJar,
  CUSTOMER_COOKIE,
  customer,
  enrolTotp,
  SAME_ORIGIN,
  signIn,
  STRONG,
  tokenIn,
  totpCode,
  type AuthTest,
} from './helpers.ts';

/**
 * Second factors over HTTP: enrolment behind a step-up, sign-in that stops at `mfa_required`
 * until a code is given, one-time use of TOTP codes and recovery codes (replays are refused and
 * audited as authn_token_reuse), a ticket that dies after a few wrong codes, a new token at every
 * privilege change, and every session signed out by a password change or reset.
 */
let t: AuthTest;
beforeAll(async () => {
  t = await authApp();
});
afterAll(async () => t.close());

async function mfaSignIn(email: string, jar = new CookieJar()) {
  const res = await browser(t, jar, 'POST', '/v1/auth/signin', { email, password: STRONG });
  return { res, jar };
}

describe('enrolment', () => {
  it('needs a recent step-up, and rotates the token when the factor is turned on', async () => {
    const email = await customer(t);
    const { jar } = await signIn(t, email);
    t.clock.advance(11 * 60_000);
    const stale = await browser(t, jar, 'POST', '/v1/auth/totp');
    expect(stale.statusCode).toBe(401);
    expect(codeOf(stale)).toBe('IDENTITY_REAUTH_REQUIRED');
    const beforeStepUp = jar.get(CUSTOMER_COOKIE)!;
    const wrong = await browser(t, jar, 'POST', '/v1/auth/step-up', { password: 'not my password at all' });
    expect(codeOf(wrong)).toBe('IDENTITY_SIGNIN_FAILED');
    const up = await browser(t, jar, 'POST', '/v1/auth/step-up', { password: STRONG });
    expect(up.statusCode).toBe(200);
    expect(jar.get(CUSTOMER_COOKIE)).not.toBe(beforeStepUp);
    expect((await t.app.inject({ method: 'GET', url: '/v1/auth/session', headers: { cookie: `${CUSTOMER_COOKIE}=${beforeStepUp}` } })).statusCode).toBe(401);
    const started = await browser(t, jar, 'POST', '/v1/auth/totp');
    expect(started.statusCode).toBe(200);
    const body = started.json<{ otpauth_uri: string; qr_code: string; secret: string }>();
    // The authenticator label names the shop (issuer) and the account (its email), per the key URI format.
    expect(authenticatorLabel(body.otpauth_uri)).toEqual({ type: 'totp', issuer: 'Acme Outdoor', account: email, issuerParameter: 'Acme Outdoor' });
    expect(body.qr_code).toMatch(/^data:image\/png;base64,/);
    const beforeConfirm = jar.get(CUSTOMER_COOKIE)!;
    const confirmed = await browser(t, jar, 'POST', '/v1/auth/totp/confirm', { code: totpCode(body.secret, t.clock.now()) });
    expect(confirmed.statusCode).toBe(200);
    const codes = confirmed.json<{ recovery_codes: string[]; session: { mfa_verified_at: string | null } }>();
    expect(codes.recovery_codes).toHaveLength(10);
    expect(codes.session.mfa_verified_at).not.toBeNull();
    expect(jar.get(CUSTOMER_COOKIE)).not.toBe(beforeConfirm);
    const state = await browser(t, jar, 'GET', '/v1/auth/session');
    expect(state.json<{ account: { second_factors: string[] } }>().account.second_factors).toEqual(['totp', 'recovery_code']);
  });
});

/** The parts of an otpauth:// key URI an authenticator app shows: `otpauth://TYPE/ISSUER:ACCOUNT?issuer=ISSUER&…`. */
function authenticatorLabel(uri: string) {
  const u = new URL(uri);
  const [issuer, account] = decodeURIComponent(u.pathname.slice(1)).split(':');
  return { type: u.host, issuer, account, issuerParameter: u.searchParams.get('issuer') };
}

describe('authenticator label', () => {
  it('two accounts in one authenticator app can be told apart: the issuer is the shop, the account is the email', async () => {
    const labels = [];
    for (const email of [await customer(t), await customer(t)]) {
      const { jar } = await signIn(t, email);
      const started = await browser(t, jar, 'POST', '/v1/auth/totp');
      labels.push({ email, label: authenticatorLabel(started.json<{ otpauth_uri: string }>().otpauth_uri) });
    }
    for (const { email, label } of labels) expect(label).toEqual({ type: 'totp', issuer: 'Acme Outdoor', account: email, issuerParameter: 'Acme Outdoor' });
    expect(labels[0]!.label.account).not.toBe(labels[1]!.label.account);
  });
});

describe('sign-in with a second factor', () => {
  it('answers mfa_required without a session, then opens one with a valid code', async () => {
    const email = await customer(t);
    const { secret } = await enrolTotp(t, (await signIn(t, email)).jar);
    const { res, jar } = await mfaSignIn(email);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ mfa_required: true, methods: ['totp', 'recovery_code'] });
    expect(jar.get(CUSTOMER_COOKIE)).toBeUndefined();
    expect(jar.get('__Host-custos_mfa')).toMatch(/^mt_/);
    // The ticket is no session.
    expect((await browser(t, jar, 'GET', '/v1/me')).statusCode).toBe(401);
    const done = await browser(t, jar, 'POST', '/v1/auth/signin/mfa', { code: totpCode(secret, t.clock.now()) });
    expect(done.statusCode).toBe(200);
    expect(done.json<{ session: { mfa_verified_at: string | null } }>().session.mfa_verified_at).not.toBeNull();
    expect(jar.get('__Host-custos_mfa')).toBeUndefined();
    expect((await browser(t, jar, 'GET', '/v1/me')).statusCode).toBe(200);
    // The ticket was used up.
    const again = await t.app.inject({ method: 'POST', url: '/v1/auth/signin/mfa', headers: SAME_ORIGIN, payload: { mfa_ticket: res.json<{ mfa_ticket: string }>().mfa_ticket, code: '000000' } });
    expect(codeOf(again)).toBe('IDENTITY_MFA_TICKET_INVALID');
  });

  it('refuses a replayed TOTP code, even in a new sign-in within the same 30 seconds, and audits it', async () => {
    const email = await customer(t);
    const { secret } = await enrolTotp(t, (await signIn(t, email)).jar);
    const code = totpCode(secret, t.clock.now());
    const first = await mfaSignIn(email);
    expect((await browser(t, first.jar, 'POST', '/v1/auth/signin/mfa', { code })).statusCode).toBe(200);
    const second = await mfaSignIn(email);
    const replay = await browser(t, second.jar, 'POST', '/v1/auth/signin/mfa', { code });
    expect(replay.statusCode).toBe(401);
    expect(codeOf(replay)).toBe('IDENTITY_TOTP_REPLAYED');
    expect(second.jar.get(CUSTOMER_COOKIE)).toBeUndefined();
    // Two racing requests with one fresh code: exactly one wins.
    t.clock.advance(30_000);
    const fresh = totpCode(secret, t.clock.now());
    const a = await mfaSignIn(email);
    const b = await mfaSignIn(email);
    const raced = await Promise.all([browser(t, a.jar, 'POST', '/v1/auth/signin/mfa', { code: fresh }), browser(t, b.jar, 'POST', '/v1/auth/signin/mfa', { code: fresh })]);
    expect(raced.map((r) => r.statusCode).sort()).toEqual([200, 401]);
    await t.runtime.audit.chainPending();
    const log = await browser(t, first.jar, 'GET', '/v1/me/access-log');
    expect(log.json<{ data: { action: string }[] }>().data.map((e) => e.action)).toContain('identity.authn_token_reuse');
  });

  it('accepts each recovery code once', async () => {
    const email = await customer(t);
    const { recoveryCodes } = await enrolTotp(t, (await signIn(t, email)).jar);
    const code = recoveryCodes[3]!;
    const first = await mfaSignIn(email);
    const used = await browser(t, first.jar, 'POST', '/v1/auth/signin/mfa', { recovery_code: code.toLowerCase().replaceAll('-', ' ') });
    expect(used.statusCode).toBe(200);
    const second = await mfaSignIn(email);
    const reused = await browser(t, second.jar, 'POST', '/v1/auth/signin/mfa', { recovery_code: code });
    expect(reused.statusCode).toBe(401);
    expect(codeOf(reused)).toBe('IDENTITY_RECOVERY_CODE_REUSED');
    const other = await browser(t, second.jar, 'POST', '/v1/auth/signin/mfa', { recovery_code: recoveryCodes[4]! });
    expect(other.statusCode).toBe(200);
  });

  it('kills the ticket after five wrong codes, so guessing must start again from the password', async () => {
    const email = await customer(t);
    const { secret } = await enrolTotp(t, (await signIn(t, email)).jar);
    const { jar } = await mfaSignIn(email);
    const right = totpCode(secret, t.clock.now());
    const wrong = right === '123456' ? '654321' : '123456';
    for (let i = 0; i < 5; i++) expect(codeOf(await browser(t, jar, 'POST', '/v1/auth/signin/mfa', { code: wrong }))).toBe('IDENTITY_TOTP_INVALID');
    const late = await browser(t, jar, 'POST', '/v1/auth/signin/mfa', { code: right });
    expect(codeOf(late)).toBe('IDENTITY_MFA_TICKET_INVALID');
  });

  it('refuses a ticket carried by a cookie from another origin', async () => {
    const email = await customer(t);
    const { secret } = await enrolTotp(t, (await signIn(t, email)).jar);
    const { jar } = await mfaSignIn(email);
    const res = await t.app.inject({ method: 'POST', url: '/v1/auth/signin/mfa', headers: { ...jar.header(), origin: 'https://evil.example' }, payload: { code: totpCode(secret, t.clock.now()) } });
    expect(codeOf(res)).toBe('IDENTITY_CSRF_REJECTED');
  });

  it('wants exactly one kind of answer', async () => {
    const email = await customer(t);
    await enrolTotp(t, (await signIn(t, email)).jar);
    const { jar } = await mfaSignIn(email);
    expect(codeOf(await browser(t, jar, 'POST', '/v1/auth/signin/mfa', {}))).toBe('IDENTITY_MFA_METHOD_INVALID');
    expect(codeOf(await browser(t, jar, 'POST', '/v1/auth/signin/mfa', { code: '123456', recovery_code: 'x' }))).toBe('IDENTITY_MFA_METHOD_INVALID');
  });
});

describe('password change and reset sign out every session', () => {
  it('revokes every other session on a change and starts a fresh one for the caller', async () => {
    const email = await customer(t);
    const phone = (await signIn(t, email)).jar;
    const laptop = (await signIn(t, email)).jar;
    const old = laptop.get(CUSTOMER_COOKIE)!;
    const changed = await browser(t, laptop, 'POST', '/v1/auth/password', { password: 'a completely different passphrase' });
    expect(changed.statusCode).toBe(200);
    expect(laptop.get(CUSTOMER_COOKIE)).not.toBe(old);
    expect((await browser(t, phone, 'GET', '/v1/auth/session')).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'GET', url: '/v1/auth/session', headers: { cookie: `${CUSTOMER_COOKIE}=${old}` } })).statusCode).toBe(401);
    expect((await browser(t, laptop, 'GET', '/v1/auth/sessions')).json<{ data: unknown[] }>().data).toHaveLength(1);
    expect((await signIn(t, email, 'a completely different passphrase')).res.statusCode).toBe(200);
    expect((await t.outbox()).some((m) => m.to === email && /was changed/.test(m.subject))).toBe(true);
  });

  it('needs a recent step-up for a password change', async () => {
    const email = await customer(t);
    const { jar } = await signIn(t, email);
    t.clock.advance(11 * 60_000);
    const res = await browser(t, jar, 'POST', '/v1/auth/password', { password: 'a completely different passphrase' });
    expect(codeOf(res)).toBe('IDENTITY_REAUTH_REQUIRED');
  });

  it('revokes every session on a reset; the link works once', async () => {
    const email = await customer(t);
    const a = (await signIn(t, email)).jar;
    const b = (await signIn(t, email)).jar;
    await t.app.inject({ method: 'POST', url: '/v1/auth/password-reset', headers: SAME_ORIGIN, payload: { email } });
    const token = tokenIn((await t.outbox()).filter((m) => m.to === email && /Reset/.test(m.subject)).at(-1)!.body);
    const reset = () => t.app.inject({ method: 'POST', url: '/v1/auth/password-reset/confirm', headers: SAME_ORIGIN, payload: { token, password: 'reset to this long passphrase' } });
    expect((await reset()).statusCode).toBe(200);
    expect((await browser(t, a, 'GET', '/v1/auth/session')).statusCode).toBe(401);
    expect((await browser(t, b, 'GET', '/v1/auth/session')).statusCode).toBe(401);
    const again = await reset();
    expect(codeOf(again)).toBe('IDENTITY_TOKEN_REUSED');
    const forged = await t.app.inject({ method: 'POST', url: '/v1/auth/password-reset/confirm', headers: SAME_ORIGIN, payload: { token: `${token.slice(0, -3)}abc`, password: 'reset to this long passphrase' } });
    expect(codeOf(forged)).toBe('IDENTITY_TOKEN_INVALID');
    expect((await signIn(t, email, 'reset to this long passphrase')).res.statusCode).toBe(200);
  });

  it('expires a reset link after 30 minutes', async () => {
    const email = await customer(t);
    await t.app.inject({ method: 'POST', url: '/v1/auth/password-reset', headers: SAME_ORIGIN, payload: { email } });
    const token = tokenIn((await t.outbox()).filter((m) => m.to === email && /Reset/.test(m.subject)).at(-1)!.body);
    t.clock.advance(31 * 60_000);
    const res = await t.app.inject({ method: 'POST', url: '/v1/auth/password-reset/confirm', headers: SAME_ORIGIN, payload: { token, password: 'reset to this long passphrase' } });
    expect(codeOf(res)).toBe('IDENTITY_TOKEN_INVALID');
    expect((await signIn(t, email)).res.statusCode).toBe(200);
  });
});
