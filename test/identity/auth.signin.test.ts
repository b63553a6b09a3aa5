import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  authApp,
  browser,
  codeOf,
  CookieJar,
  CUSTOMER_COOKIE,
  customer,
  SAME_ORIGIN,
  signIn,
  STRONG,
  uniqueEmail,
  withoutRequestId,
  type AuthTest,
} from './helpers.ts';

/**
 * Customer sign-in over HTTP: the cookie's attributes, a new token at sign-in, the session and
 * device list, sign-out, and enumeration — an unknown email and a wrong password, a new and a
 * known address at sign-up and at reset, must not be told apart by status or body (ASVS 6.3.8).
 */
let t: AuthTest;
beforeAll(async () => {
  t = await authApp();
});
afterAll(async () => t.close());

describe('customer sign-in', () => {
  it('sets a __Host- cookie that is HttpOnly, Secure, SameSite and Path=/, holding a 256-bit token', async () => {
    const email = await customer(t);
    const { res } = await signIn(t, email);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ mfa_required: false, session: { realm: 'customer', mfa_verified_at: null } });
    expect(res.json()).not.toHaveProperty('token');
    const cookie = [res.headers['set-cookie']].flat().find((c) => c?.startsWith(`${CUSTOMER_COOKIE}=`));
    expect(cookie).toMatch(/^__Host-custos_session=cs_[A-Za-z0-9_-]{43}; Path=\/; Secure; HttpOnly; SameSite=(Lax|Strict); Max-Age=86400$/);
    expect(res.headers['cache-control']).toBe('no-store');
  });

  it('shows the session, lists the devices, signs out, and the token stops working', async () => {
    const email = await customer(t);
    const phone = (await signIn(t, email, STRONG, new CookieJar())).jar;
    const laptop = await browser(t, new CookieJar(), 'POST', '/v1/auth/signin', { email, password: STRONG }, { 'user-agent': 'Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0' });
    const laptopJar = new CookieJar().take(laptop);
    const session = await browser(t, laptopJar, 'GET', '/v1/auth/session');
    expect(session.statusCode).toBe(200);
    expect(session.json()).toMatchObject({ session: { device: 'Firefox on Linux' }, account: { email_verified: true, second_factors: [] } });
    expect(session.body).not.toContain(email);
    const list = await browser(t, laptopJar, 'GET', '/v1/auth/sessions');
    expect(list.json<{ data: { current: boolean }[] }>().data.map((s) => s.current).sort()).toEqual([false, true]);
    const out = await browser(t, phone, 'POST', '/v1/auth/signout');
    expect(out.statusCode).toBe(204);
    expect(phone.get(CUSTOMER_COOKIE)).toBeUndefined();
    expect((await browser(t, laptopJar, 'GET', '/v1/auth/sessions')).json<{ data: unknown[] }>().data).toHaveLength(1);
  });

  it('revokes one device from another', async () => {
    const email = await customer(t);
    const a = (await signIn(t, email)).jar;
    const b = (await signIn(t, email)).jar;
    const mine = (await browser(t, b, 'GET', '/v1/auth/session')).json<{ session: { id: string } }>().session.id;
    const stolen = b.get(CUSTOMER_COOKIE)!;
    expect((await browser(t, a, 'DELETE', `/v1/auth/sessions/${mine}`)).statusCode).toBe(204);
    const after = await t.app.inject({ method: 'GET', url: '/v1/auth/session', headers: { cookie: `${CUSTOMER_COOKIE}=${stolen}` } });
    expect(after.statusCode).toBe(401);
    expect(codeOf(after)).toBe('IDENTITY_SESSION_REQUIRED');
    // Another account cannot revoke it, nor learn that it exists.
    const other = (await signIn(t, await customer(t))).jar;
    const ids = (await browser(t, a, 'GET', '/v1/auth/sessions')).json<{ data: { id: string }[] }>().data.map((s) => s.id);
    const foreign = await browser(t, other, 'DELETE', `/v1/auth/sessions/${ids[0]}`);
    expect(foreign.statusCode).toBe(404);
    expect((await browser(t, a, 'GET', '/v1/auth/session')).statusCode).toBe(200);
  });

  it('gives non-browser clients the token in the body and accepts it as Bearer', async () => {
    const email = await customer(t);
    const res = await t.app.inject({ method: 'POST', url: '/v1/auth/signin', payload: { email, password: STRONG, session_delivery: 'token' } });
    expect(res.statusCode).toBe(200);
    expect(res.headers['set-cookie']).toBeUndefined();
    const token = res.json<{ token: string }>().token;
    expect(token).toMatch(/^cs_[A-Za-z0-9_-]{43}$/);
    const me = await t.app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${token}` } });
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ email });
    // Bearer requests need no Origin: a browser never attaches this header by itself.
    const out = await t.app.inject({ method: 'POST', url: '/v1/auth/signout', headers: { authorization: `Bearer ${token}` } });
    expect(out.statusCode).toBe(204);
    expect((await t.app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(401);
  });
});

describe('API description', () => {
  it('documents the sign-in routes of both realms and /v1/me in the OpenAPI document', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/v1/openapi.json' });
    expect(res.statusCode).toBe(200);
    const paths = Object.keys(res.json<{ paths: Record<string, unknown> }>().paths);
    for (const p of ['/v1/auth/signin', '/v1/auth/signin/mfa', '/v1/auth/sessions/{id}', '/v1/auth/passkeys/signin', '/v1/staff/auth/signin', '/v1/me', '/v1/me/access-log', '/v1/staff/me'])
      expect(paths).toContain(p);
  });
});

describe('enumeration: the answers do not say whether an account exists', () => {
  it('answers an unknown email exactly like a wrong password', async () => {
    const email = await customer(t);
    const wrong = await t.app.inject({ method: 'POST', url: '/v1/auth/signin', headers: SAME_ORIGIN, payload: { email, password: 'not the password at all, no' } });
    const unknown = await t.app.inject({ method: 'POST', url: '/v1/auth/signin', headers: SAME_ORIGIN, payload: { email: uniqueEmail(), password: 'not the password at all, no' } });
    expect(wrong.statusCode).toBe(401);
    expect(unknown.statusCode).toBe(wrong.statusCode);
    expect(codeOf(wrong)).toBe('IDENTITY_SIGNIN_FAILED');
    expect(withoutRequestId(unknown)).toBe(withoutRequestId(wrong));
    expect(Object.keys(unknown.headers).sort()).toEqual(Object.keys(wrong.headers).sort());
    expect(wrong.body).not.toContain(email);
  });

  it('answers sign-up of a known address like a new one, and mails the owner instead', async () => {
    const email = await customer(t);
    const before = (await t.outbox()).length;
    const known = await t.app.inject({ method: 'POST', url: '/v1/auth/signup', headers: SAME_ORIGIN, payload: { email, password: 'another long passphrase here' } });
    const fresh = await t.app.inject({ method: 'POST', url: '/v1/auth/signup', headers: SAME_ORIGIN, payload: { email: uniqueEmail(), password: 'another long passphrase here' } });
    expect(known.statusCode).toBe(202);
    expect(fresh.statusCode).toBe(202);
    expect(withoutRequestId(known)).toBe(withoutRequestId(fresh));
    expect(known.headers['set-cookie']).toBeUndefined();
    expect(fresh.headers['set-cookie']).toBeUndefined();
    const mails = (await t.outbox()).slice(before);
    expect(mails.find((m) => m.to === email)?.body).toMatch(/already has one/);
    // The known account is unchanged: its password still works, the attempted one does not.
    expect((await signIn(t, email)).res.statusCode).toBe(200);
    expect((await signIn(t, email, 'another long passphrase here')).res.statusCode).toBe(401);
  });

  it('answers a reset request alike for a known and an unknown address', async () => {
    const email = await customer(t);
    const known = await t.app.inject({ method: 'POST', url: '/v1/auth/password-reset', headers: SAME_ORIGIN, payload: { email } });
    const unknown = await t.app.inject({ method: 'POST', url: '/v1/auth/password-reset', headers: SAME_ORIGIN, payload: { email: uniqueEmail() } });
    expect(known.statusCode).toBe(202);
    expect(withoutRequestId(known)).toBe(withoutRequestId(unknown));
    expect((await t.outbox()).filter((m) => m.to === email && /Reset/.test(m.subject))).toHaveLength(1);
  });

  it('checks the password policy before looking the address up, so weak passwords are refused alike', async () => {
    const email = await customer(t);
    const known = await t.app.inject({ method: 'POST', url: '/v1/auth/signup', headers: SAME_ORIGIN, payload: { email, password: 'short' } });
    const fresh = await t.app.inject({ method: 'POST', url: '/v1/auth/signup', headers: SAME_ORIGIN, payload: { email: uniqueEmail(), password: 'short' } });
    expect(known.statusCode).toBe(400);
    expect(withoutRequestId(known)).toBe(withoutRequestId(fresh));
  });
});
