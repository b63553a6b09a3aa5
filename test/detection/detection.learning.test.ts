import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authApp, customer, SAME_ORIGIN, STRONG, uniqueEmail, type AuthTest } from '../identity/helpers.ts';
import { TEST_DIALECT } from '../support/store.ts';
import { alertsOf, codeOf, from, rulesFile, seedActivity, staffWithId } from './helpers.ts';

/**
 * The rules that rest on what was learned (usual hours, sources and rates, from hourly counters),
 * and the account responses: access outside a staff member's usual hours, a staff account from a
 * new source (sessions ended: step-up), a key whose usual rate makes a read count normal, and a
 * brute force that locks the account. During the learning period the same alerts take no action.
 */
const RULES = `
learning_period: 1s
rules:
  new_source: { responses: [alert, require_step_up] }
  brute_force: { threshold: 3, responses: [alert, lock_account] }
  bulk_read: { threshold: 6, min_count: 6 }
`;

async function readCustomers(t: AuthTest, headers: Record<string, string>, n: number): Promise<void> {
  const writer = await t.bearer(['account']);
  for (let i = 0; i < n; i++) {
    const id = (await t.app.inject({ method: 'POST', url: '/v1/customers', headers: { authorization: writer }, payload: { email: uniqueEmail('learn'), name: 'Learned Rate' } })).json<{ id: string }>().id;
    const res = await t.app.inject({ method: 'GET', url: `/v1/customers/${id}`, headers: { ...headers, 'custos-purpose': 'support' } });
    if (res.statusCode !== 200) throw new Error(`read answered ${res.statusCode}: ${res.body}`);
  }
}

describe(`learned rules after the learning period (${TEST_DIALECT})`, () => {
  let t: AuthTest;
  let security: string;
  beforeAll(async () => {
    t = await authApp({ CUSTOS_DETECTION_RULES: rulesFile(RULES) });
    security = await t.bearer(['security'], 'siem');
  });
  afterAll(async () => t?.close());

  it('a staff member working evenings who reads at 10:00 UTC raises off_hours; a new source ends their sessions', async () => {
    const { jar, memberId } = await staffWithId(t, 'support_agent');
    await seedActivity(t, `staff:${memberId}`, 'events', [18, 19, 20, 21, 22], 40);
    // Learned profiles are read again after ten minutes.
    t.clock.advance(11 * 60_000);
    await readCustomers(t, jar.header(), 1);
    const offHours = (await alertsOf(t, security, '?rule=off_hours')).filter((a) => a.actor?.id === memberId);
    expect(offHours).toHaveLength(1);
    expect(offHours[0]).toMatchObject({ severity: 'medium', detail: { hour_utc: 10 } });

    expect((await alertsOf(t, security, '?rule=new_source')).filter((a) => a.actor?.id === memberId)).toEqual([]);
    await readCustomers(t, { ...jar.header(), ...from('203.0.113.77') }, 1);
    const fresh = (await alertsOf(t, security, '?rule=new_source')).filter((a) => a.actor?.id === memberId);
    expect(fresh).toHaveLength(1);
    expect(fresh[0]).toMatchObject({ source: '203.0.113.77', actions: ['require_step_up'] });
    const after = await t.app.inject({ method: 'GET', url: '/v1/customers/cus_00000000000000000000000000', headers: { ...jar.header(), 'custos-purpose': 'support' } });
    expect(codeOf(after)).toBe('IDENTITY_SESSION_REQUIRED');
  });

  it("a key's learned usual rate raises its bulk limit: reads an unknown key would be alerted for are normal for it", async () => {
    const { key, info } = await t.runtime.apiKeys.create({ name: 'busy-backend', purposes: ['support'] });
    await seedActivity(t, `apikey:${info.id}`, 'reads', [9, 10, 11], 100);
    await seedActivity(t, `apikey:${info.id}`, 'events', [9, 10, 11], 100);
    await readCustomers(t, { authorization: `Bearer ${key.reveal()}` }, 8);
    expect((await alertsOf(t, security, '?rule=bulk_read')).filter((a) => a.actor?.id === info.id)).toEqual([]);
    const fresh = await t.bearer(['support'], 'new-script');
    await readCustomers(t, { authorization: fresh }, 8);
    expect((await alertsOf(t, security, '?rule=bulk_read')).filter((a) => a.actor?.name === 'new-script')).toHaveLength(1);
  });

  it('a brute force on one account from several sources raises one alert and locks the account', async () => {
    const email = await customer(t);
    for (const [i, address] of ['192.0.2.1', '192.0.2.2', '192.0.2.3'].entries()) {
      const res = await t.app.inject({ method: 'POST', url: '/v1/auth/signin', headers: { ...SAME_ORIGIN, ...from(address) }, payload: { email, password: `wrong password number ${i}` } });
      expect(codeOf(res)).toBe('IDENTITY_SIGNIN_FAILED');
    }
    const alerts = await alertsOf(t, security, '?rule=brute_force');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ actor: { kind: 'account' }, actions: ['lock_account'], detail: { account_known: true } });
    const locked = await t.app.inject({ method: 'POST', url: '/v1/auth/signin', headers: SAME_ORIGIN, payload: { email, password: STRONG } });
    expect(codeOf(locked)).toBe('IDENTITY_ACCOUNT_LOCKED');
  });
});

describe(`during the learning period (${TEST_DIALECT})`, () => {
  let t: AuthTest;
  let security: string;
  beforeAll(async () => {
    t = await authApp({ CUSTOS_DETECTION_RULES: rulesFile(RULES.replace('learning_period: 1s', 'learning_period: 7d')) });
    security = await t.bearer(['security'], 'siem');
  });
  afterAll(async () => t?.close());

  it('a new source of a staff account is alerted and nothing is done', async () => {
    const { jar, memberId } = await staffWithId(t, 'support_agent');
    await readCustomers(t, jar.header(), 1);
    await readCustomers(t, { ...jar.header(), ...from('203.0.113.78') }, 1);
    const alerts = (await alertsOf(t, security, '?rule=new_source')).filter((a) => a.actor?.id === memberId);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.actions).toEqual([]);
    await readCustomers(t, jar.header(), 1);
  });
});
