import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp } from '../../../test/support/app.ts';
import { TEST_DIALECT } from '../../../test/support/store.ts';
import { call, expectError, person } from '../../../test/vault/helpers.ts';

/**
 * GET /v1/purposes/{purpose}/audience: only customers whose consent is in force, with only that
 * purpose's fields and an unsubscribe link, one audit entry per customer released, page by page.
 */
let t: TestApp;
let shop: string;
let marketing: string;
beforeAll(async () => {
  t = await testApp();
  shop = await t.bearer(['account']);
  marketing = await t.bearer(['marketing']);
});
afterAll(() => t.close());

async function customer(consents: boolean[]): Promise<{ id: string; email: string }> {
  const p = person();
  const id = (await call(t, { method: 'POST', url: '/v1/customers', auth: shop, purpose: 'account', payload: p.customer })).json<{ id: string }>().id;
  for (const granted of consents) await call(t, { method: 'POST', url: `/v1/customers/${id}/consents`, auth: shop, payload: { purpose: 'marketing', granted, source: 'api', notice_version: 1 } });
  return { id, email: p.customer.email };
}
const lines = (body: string) => body.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);

describe(`audience export (${TEST_DIALECT})`, () => {
  it('streams only customers whose consent is in force, with the purpose fields and an unsubscribe link, one audit entry each', async () => {
    const a = await customer([true]);
    const b = await customer([true, false]);
    const c = await customer([]);
    const d = await customer([true]);
    const seen: Record<string, unknown>[] = [];
    let cursor: string | undefined;
    for (let i = 0; i < 10; i++) {
      const res = await call(t, { url: `/v1/purposes/marketing/audience?limit=1${cursor === undefined ? '' : `&cursor=${cursor}`}`, auth: marketing });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
      seen.push(...lines(res.body));
      cursor = res.headers['custos-next-cursor'] as string | undefined;
      if (cursor === undefined) break;
    }
    expect(seen.map((r) => r.customer_id).sort()).toEqual([a.id, d.id].sort());
    const rowA = seen.find((r) => r.customer_id === a.id)!;
    expect(Object.keys(rowA).sort()).toEqual(['customer_id', 'email', 'locale', 'name', 'unsubscribe_url']);
    expect(rowA.email).toBe(a.email);
    expect(String(rowA.unsubscribe_url)).toMatch(/\/v1\/unsubscribe\//);
    const log = async (id: string) =>
      (await call(t, { url: `/v1/customers/${id}/access-log`, auth: shop, purpose: 'account' })).json<{ data: { action: string; purpose: string }[] }>().data.filter((e) => e.purpose === 'marketing' && e.action.startsWith('vault.'));
    expect((await log(a.id)).map((e) => e.action)).toEqual(['vault.read']);
    expect(await log(b.id)).toEqual([]);
    expect(await log(c.id)).toEqual([]);
  });

  it('refuses a key not scoped to the purpose, a purpose that is not consent-based, and an unknown purpose', async () => {
    expectError(await call(t, { url: '/v1/purposes/analytics/audience', auth: shop }), 403, 'POLICY_PURPOSE_NOT_ALLOWED');
    expectError(await call(t, { url: '/v1/purposes/marketing/audience', auth: shop }), 403, 'POLICY_PURPOSE_NOT_ALLOWED');
    await customer([true]);
    expectError(await call(t, { url: '/v1/purposes/account/audience', auth: shop }), 400, 'CONSENT_PURPOSE_NOT_CONSENT_BASED');
    expectError(await call(t, { url: '/v1/purposes/mind_reading/audience', auth: shop }), 400, 'CONSENT_PURPOSE_UNKNOWN');
  });
});
