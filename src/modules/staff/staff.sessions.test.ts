import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authApp, browser, customer, enrolTotp, signIn, staffMember, STRONG, type AuthTest } from '../../../test/identity/helpers.ts';
import { CLI_OPERATOR } from './ports.ts';

/**
 * Staff roles and sessions through the whole app: a role's change holds for a session signed in
 * before it, and a customer session on a staff route is told so.
 */
let t: AuthTest;
let customerId: string;
beforeAll(async () => {
  t = await authApp();
  const created = await t.app.inject({
    method: 'POST',
    url: '/v1/customers',
    headers: { authorization: await t.bearer(['account']) },
    payload: { email: 'ada@example.org', name: 'Ada Lovelace' },
  });
  customerId = created.json<{ id: string }>().id;
});
afterAll(async () => t.close());

const today = () => t.clock.now().toISOString().slice(0, 10);
const message = (res: { json: () => unknown }) => (res.json() as { error: { code: string; message: string } }).error;

describe('staff sessions and roles', () => {
  it('a narrowed role cannot be used through a staff session signed in before the change', async () => {
    await t.runtime.staff.roles.define(CLI_OPERATOR, { name: 'returns_desk', purposes: ['fulfilment', 'support'], permissions: [] });
    const { email } = await staffMember(t, 'returns_desk', { trainedOn: today() });
    const { jar } = await signIn(t, email, STRONG, undefined, '/v1/staff/auth');
    await enrolTotp(t, jar, '/v1/staff/auth');
    const read = () => browser(t, jar, 'GET', `/v1/customers/${customerId}`, undefined, { 'custos-purpose': 'support' });
    expect((await read()).statusCode).toBe(200);

    await t.runtime.staff.roles.define(CLI_OPERATOR, { name: 'returns_desk', purposes: ['fulfilment'], permissions: [] });
    const refused = await read();
    expect(refused.statusCode).toBe(403);
    expect(refused.body).not.toContain('Ada');
    expect((await browser(t, jar, 'GET', `/v1/customers/${customerId}`, undefined, { 'custos-purpose': 'fulfilment' })).statusCode).toBe(200);
  });

  it('a customer session on a staff route is answered "customer session", not "sign in"', async () => {
    const email = await customer(t);
    const { jar } = await signIn(t, email);
    const viaCookie = await browser(t, jar, 'GET', '/v1/staff/me');
    expect(viaCookie.statusCode).toBe(401);
    expect(message(viaCookie)).toMatchObject({ code: 'STAFF_SESSION_REQUIRED', message: expect.stringContaining('customer session') });

    const res = await t.app.inject({ method: 'POST', url: '/v1/auth/signin', payload: { email, password: STRONG, session_delivery: 'token' } });
    const bearer = { authorization: `Bearer ${res.json<{ token: string }>().token}` };
    const staffRoute = await t.app.inject({ method: 'GET', url: '/v1/staff/me', headers: bearer });
    expect(message(staffRoute)).toMatchObject({ code: 'STAFF_SESSION_REQUIRED', message: expect.stringContaining('customer session') });
    const vaultRoute = await t.app.inject({ method: 'GET', url: `/v1/customers/${customerId}`, headers: { ...bearer, 'custos-purpose': 'account' } });
    expect(vaultRoute.statusCode).toBe(401);
    expect(vaultRoute.body).not.toContain('Ada');
    expect(message(vaultRoute)).toMatchObject({ code: 'IDENTITY_SESSION_REQUIRED', message: expect.stringContaining('customer session') });

    // Without any session, or with a dead one, the answers stay as they were.
    const none = await t.app.inject({ method: 'GET', url: '/v1/staff/me' });
    expect(message(none)).toMatchObject({ code: 'STAFF_SESSION_REQUIRED', message: 'sign in as a staff member' });
    const dead = await t.app.inject({ method: 'GET', url: `/v1/customers/${customerId}`, headers: { authorization: `Bearer cs_${'A'.repeat(43)}`, 'custos-purpose': 'account' } });
    expect(message(dead).message).not.toContain('customer session');
  });
});
