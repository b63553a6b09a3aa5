import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import { fixedClock } from '../../src/kernel/clock.ts';
import { testApp, type TestApp } from '../support/app.ts';
import { TEST_DIALECT } from '../support/store.ts';
import { call, expectError } from '../vault/helpers.ts';

/**
 * Cards leave the vault after their expiry month plus the grace period (PCI DSS 3.2.1), and the
 * quarterly retention report lists what was removed, by cause.
 */
describe(`card expiry sweep and retention report (${TEST_DIALECT})`, () => {
  const clock = fixedClock(new Date('2026-10-15T12:00:00Z'));
  let t: TestApp;
  let payments: string;
  const tokenise = async (exp_month: number, exp_year: number) => {
    const res = await call(t, { method: 'POST', url: '/v1/cards', auth: payments, purpose: 'payments', payload: { pan: '4111111111111111', exp_month, exp_year } });
    expect(res.statusCode, res.body).toBe(201);
    return res.json<{ token: string }>().token;
  };

  beforeAll(async () => {
    t = await testApp({ clock, env: { CUSTOS_CARDS_EXPIRY_GRACE_DAYS: '30' } });
    payments = await t.bearer(['payments']);
  });
  afterAll(async () => t?.close());

  it('removes a card only after its expiry month plus the grace period; the report counts it; the CLI report agrees', async () => {
    const expiring = await tokenise(10, 2026);
    const later = await tokenise(12, 2027);
    const deleted = await tokenise(1, 2028);
    expect((await call(t, { method: 'DELETE', url: `/v1/cards/${deleted}`, auth: payments, purpose: 'payments' })).statusCode).toBe(204);
    // 2026-11-20: October ended 20 days ago, inside the grace period.
    clock.set(new Date('2026-11-20T00:00:00Z'));
    expect(await t.runtime.cards.sweepExpired(30)).toBe(0);
    clock.set(new Date('2026-12-02T00:00:00Z'));
    expect((await t.runtime.cards.retentionReport('2026Q4')).overdue).toBe(1);
    expect(await t.runtime.cards.sweepExpired(30)).toBe(1);
    expectError(await call(t, { url: `/v1/cards/${expiring}`, auth: payments, purpose: 'payments' }), 410, 'CARDS_TOKEN_DELETED');
    expect((await call(t, { url: `/v1/cards/${later}`, auth: payments, purpose: 'payments' })).statusCode).toBe(200);
    const report = await t.runtime.cards.retentionReport('2026Q4');
    expect(report).toMatchObject({ quarter: '2026Q4', from: '2026-10-01T00:00:00.000Z', to: '2027-01-01T00:00:00.000Z', removed: { delete: 1, expiry: 1 }, stored: 1, overdue: 0 });
    await t.runtime.audit.chainPending();
    const expired = await t.runtime.store.db.selectFrom('audit_log').select(['actor', 'record_id']).where('action', '=', 'cards.expire').execute();
    expect(expired).toEqual([{ actor: 'system', record_id: expiring }]);
    const out: string[] = [];
    const code = await main(['cards', 'report', '--quarter', '2026Q4', '--json'], { out: (l) => void out.push(l), err: () => undefined, progress: () => undefined, done: () => undefined }, t.env);
    expect(code).toBe(0);
    expect(JSON.parse(out.join('\n'))).toMatchObject({ removed: { delete: 1, expiry: 1 }, stored: 1 });
  });
});
