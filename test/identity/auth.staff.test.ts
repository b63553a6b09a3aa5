import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_OPERATOR } from '../../src/modules/staff/ports.ts';
import {
  authApp,
  browser,
  codeOf,
  CookieJar,
  customer,
  enrolTotp,
  SAME_ORIGIN,
  signIn,
  staffMember,
  STAFF_COOKIE,
  STRONG,
  totpCode,
  type AuthTest,
} from './helpers.ts';

/**
 * Staff read personal data through the same vault routes as an API key, with a staff session and
 * a stated purpose — but only with a second factor verified in this session (PCI DSS 4.0.1 8.4.2),
 * valid training (12.6.3) and a purpose of their role; every refusal answers with the staff codes.
 * Staff sessions are their own realm: 15 minutes idle, a cookie of their own, no customer routes.
 */
let t: AuthTest;
let customerId: string;
beforeAll(async () => {
  t = await authApp();
  const created = await t.app.inject({
    method: 'POST',
    url: '/v1/customers',
    headers: { authorization: await t.bearer(['account']) },
    payload: { email: 'ada@example.org', name: 'Ada Lovelace', phone: '+44 20 7946 0958' },
  });
  customerId = created.json<{ id: string }>().id;
});
afterAll(async () => t.close());

const today = () => t.clock.now().toISOString().slice(0, 10);
const staffSignIn = (email: string, jar = new CookieJar()) => signIn(t, email, STRONG, jar, '/v1/staff/auth');
const read = (jar: CookieJar, purpose = 'support') => browser(t, jar, 'GET', `/v1/customers/${customerId}`, undefined, { 'custos-purpose': purpose });

describe('staff reading personal data', () => {
  it('refuses a staff session without a verified second factor (STAFF_MFA_REQUIRED), on the vault and the staff routes', async () => {
    const { email } = await staffMember(t, 'support_agent', { trainedOn: today() });
    const { res, jar } = await staffSignIn(email);
    expect(res.statusCode).toBe(200);
    expect(jar.get(STAFF_COOKIE)).toMatch(/^cs_/);
    const cookie = [res.headers['set-cookie']].flat().find((c) => c?.startsWith(`${STAFF_COOKIE}=`));
    expect(cookie).toMatch(/SameSite=Strict; Max-Age=43200$/);
    const refused = await read(jar);
    expect(refused.statusCode).toBe(403);
    expect(codeOf(refused)).toBe('STAFF_MFA_REQUIRED');
    expect(refused.body).not.toContain('Ada');
    expect(codeOf(await browser(t, jar, 'GET', '/v1/staff/me'))).toBe('STAFF_MFA_REQUIRED');
  });

  it('reads with a role purpose once MFA is verified and training is valid, through the API-key route', async () => {
    const { email, memberId } = await staffMember(t, 'support_agent', { trainedOn: today() });
    const { jar } = await staffSignIn(email);
    const { secret } = await enrolTotp(t, jar, '/v1/staff/auth');
    // Enrolling verified the factor in this session: access opens at once.
    const ok = await read(jar);
    expect(ok.statusCode).toBe(200);
    expect(ok.json()).toMatchObject({ id: customerId, name: 'Ada Lovelace', email: 'a***@e***.org' });
    const me = await browser(t, jar, 'GET', '/v1/staff/me');
    expect(me.statusCode).toBe(200);
    expect(me.json()).toMatchObject({ id: memberId, role: 'support_agent', mfa_enrolled: true });
    // A purpose beyond the role is refused.
    expect((await read(jar, 'fraud_prevention')).statusCode).toBe(403);
    // The read is in the customer's access log under the staff member's name and the purpose.
    await t.runtime.audit.chainPending();
    const log = await t.app.inject({ method: 'GET', url: `/v1/customers/${customerId}/access-log`, headers: { authorization: await t.bearer(['account']), 'custos-purpose': 'account' } });
    expect(log.json<{ data: { actor: string; purpose: string }[] }>().data).toContainEqual(expect.objectContaining({ actor: `staff:${memberId}`, purpose: 'support' }));
    // Signing in again now stops at the second factor.
    const again = await staffSignIn(email);
    expect(again.res.json()).toMatchObject({ mfa_required: true });
    expect((await read(again.jar)).statusCode).toBe(401);
    t.clock.advance(30_000);
    const done = await browser(t, again.jar, 'POST', '/v1/staff/auth/signin/mfa', { code: totpCode(secret, t.clock.now()) });
    expect(done.statusCode).toBe(200);
    expect((await read(again.jar)).statusCode).toBe(200);
  });

  it('refuses a member whose training is missing or expired (STAFF_TRAINING_REQUIRED)', async () => {
    const { email: untrained } = await staffMember(t, 'support_agent');
    const a = (await staffSignIn(untrained)).jar;
    await enrolTotp(t, a, '/v1/staff/auth');
    const missing = await read(a);
    expect(missing.statusCode).toBe(403);
    expect(codeOf(missing)).toBe('STAFF_TRAINING_REQUIRED');

    const now = t.clock.now();
    const longAgo = new Date(Date.UTC(now.getUTCFullYear() - 1, now.getUTCMonth() - 1, now.getUTCDate())).toISOString().slice(0, 10);
    const { email: lapsed } = await staffMember(t, 'support_agent', { trainedOn: longAgo });
    const b = (await staffSignIn(lapsed)).jar;
    await enrolTotp(t, b, '/v1/staff/auth');
    const expired = await read(b);
    expect(codeOf(expired)).toBe('STAFF_TRAINING_REQUIRED');
    expect(expired.json<{ error: { courses: string[] } }>().error.courses).toEqual(['security_awareness']);
  });

  it('refuses a suspended member at sign-in and cuts a live session off at the next request', async () => {
    const { email, memberId } = await staffMember(t, 'support_agent', { trainedOn: today() });
    const { jar } = await staffSignIn(email);
    await enrolTotp(t, jar, '/v1/staff/auth');
    expect((await read(jar)).statusCode).toBe(200);
    await t.runtime.staff.members.suspend(CLI_OPERATOR, memberId);
    expect(codeOf(await read(jar))).toBe('STAFF_SUSPENDED');
    const res = await t.app.inject({ method: 'POST', url: '/v1/staff/auth/signin', headers: SAME_ORIGIN, payload: { email, password: STRONG } });
    expect(codeOf(res)).toBe('STAFF_SUSPENDED');
  });

  it('revokes the session when the member\'s role changes: the new privileges come with a new token', async () => {
    const { email, memberId } = await staffMember(t, 'support_agent', { trainedOn: today() });
    const { jar } = await staffSignIn(email);
    const { secret } = await enrolTotp(t, jar, '/v1/staff/auth');
    expect((await read(jar)).statusCode).toBe(200);
    const old = jar.get(STAFF_COOKIE)!;
    t.clock.advance(1000);
    await t.runtime.staff.members.changeRole(CLI_OPERATOR, memberId, 'fulfilment');
    const stale = await read(jar, 'fulfilment');
    expect(stale.statusCode).toBe(401);
    expect(codeOf(stale)).toBe('IDENTITY_SESSION_REQUIRED');
    const again = await staffSignIn(email);
    t.clock.advance(30_000);
    await browser(t, again.jar, 'POST', '/v1/staff/auth/signin/mfa', { code: totpCode(secret, t.clock.now()) });
    expect(again.jar.get(STAFF_COOKIE)).not.toBe(old);
    expect((await read(again.jar, 'fulfilment')).statusCode).toBe(200);
    expect((await read(again.jar, 'support')).statusCode).toBe(403);
  });

  it('refuses a cross-origin write with the staff cookie (CSRF), and accepts the same-origin one', async () => {
    const { email } = await staffMember(t, 'privacy_officer', { trainedOn: today() });
    const { jar } = await staffSignIn(email);
    await enrolTotp(t, jar, '/v1/staff/auth');
    const evil = await t.app.inject({
      method: 'PATCH',
      url: `/v1/customers/${customerId}`,
      headers: { ...jar.header(), origin: 'https://evil.example', 'custos-purpose': 'account' },
      payload: { name: 'Mallory' },
    });
    expect(evil.statusCode).toBe(403);
    expect(codeOf(evil)).toBe('IDENTITY_CSRF_REJECTED');
    const silent = await t.app.inject({ method: 'PATCH', url: `/v1/customers/${customerId}`, headers: { ...jar.header(), 'custos-purpose': 'account' }, payload: { name: 'Mallory' } });
    expect(silent.statusCode).toBe(403);
    const ok = await browser(t, jar, 'PATCH', `/v1/customers/${customerId}`, { locale: 'en-GB' }, { 'custos-purpose': 'account' });
    expect(ok.statusCode).toBe(200);
    expect((await read(jar, 'account')).json()).toMatchObject({ name: 'Ada Lovelace' });
  });

  it('ends a staff session after 15 minutes idle (PCI DSS 8.2.8)', async () => {
    const { email } = await staffMember(t, 'support_agent', { trainedOn: today() });
    const { jar } = await staffSignIn(email);
    await enrolTotp(t, jar, '/v1/staff/auth');
    t.clock.advance(14 * 60_000);
    expect((await read(jar)).statusCode).toBe(200);
    t.clock.advance(16 * 60_000);
    const late = await read(jar);
    expect(late.statusCode).toBe(401);
    expect(codeOf(late)).toBe('IDENTITY_SESSION_REQUIRED');
  });

  it('keeps the realms apart: a staff session is no customer session, and a staff password does not sign a customer in', async () => {
    const { email } = await staffMember(t, 'support_agent', { trainedOn: today() });
    const { jar } = await staffSignIn(email);
    const token = jar.get(STAFF_COOKIE)!;
    expect((await t.app.inject({ method: 'GET', url: '/v1/me', headers: { authorization: `Bearer ${token}` } })).statusCode).toBe(401);
    expect((await t.app.inject({ method: 'GET', url: '/v1/auth/session', headers: { cookie: `__Host-custos_session=${token}` } })).statusCode).toBe(401);
    expect((await signIn(t, email)).res.statusCode).toBe(401);
  });
});

describe('a customer session and other customers’ data', () => {
  it('reads its own data through /v1/me, and is refused on the API-key routes for anyone’s data', async () => {
    const email = await customer(t);
    const { jar } = await signIn(t, email);
    const me = await browser(t, jar, 'GET', '/v1/me');
    expect(me.statusCode).toBe(200);
    const mine = me.json<{ id: string; email: string }>();
    expect(mine.email).toBe(email);
    for (const id of [customerId, mine.id]) {
      const viaCookie = await browser(t, jar, 'GET', `/v1/customers/${id}`, undefined, { 'custos-purpose': 'account' });
      expect(viaCookie.statusCode).toBe(401);
      expect(viaCookie.body).not.toContain('Ada');
      expect(codeOf(viaCookie)).toBe('APIKEY_MISSING');
    }
    const res = await t.app.inject({ method: 'POST', url: '/v1/auth/signin', payload: { email, password: STRONG, session_delivery: 'token' } });
    const token = res.json<{ token: string }>().token;
    const viaBearer = await t.app.inject({ method: 'GET', url: `/v1/customers/${customerId}`, headers: { authorization: `Bearer ${token}`, 'custos-purpose': 'account' } });
    expect(viaBearer.statusCode).toBe(401);
    expect(viaBearer.body).not.toContain('Ada');
    const lookup = await t.app.inject({ method: 'GET', url: '/v1/customers?email=ada@example.org', headers: { authorization: `Bearer ${token}`, 'custos-purpose': 'account' } });
    expect(lookup.statusCode).toBe(401);
  });

  it('refuses a customer actor at the policy decision point for any subject but itself', async () => {
    const email = await customer(t);
    const { jar } = await signIn(t, email);
    const mine = (await browser(t, jar, 'GET', '/v1/me')).json<{ id: string }>().id;
    const { customerActor } = await import('../../src/modules/identity/sessions/session-guard.ts');
    const ctx = { actor: customerActor(mine), purpose: 'account', requestId: 'test' };
    await expect(t.runtime.vault.readCustomer(ctx, customerId)).rejects.toMatchObject({ code: 'IDENTITY_SUBJECT_FORBIDDEN' });
    await expect(t.runtime.vault.listOrders(ctx, customerId, { limit: 5 })).resolves.toMatchObject({ data: [] });
    await expect(t.runtime.vault.readCustomer(ctx, mine)).resolves.toMatchObject({ id: mine });
  });
});
