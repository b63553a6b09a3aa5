import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp } from '../support/app.ts';
import { ALL_PURPOSES, apiKey, call, census, person, seed } from './helpers.ts';

/**
 * Writes and reads arriving together — as they do from a shop backend — must all succeed: the
 * audit log's own writers (group commit, background chainer) may never make a vault write fail
 * with a storage error (a 500 here would be a lost order or a lost correction), and every write
 * that answered 201/200 is stored exactly once with its audit entry.
 */
describe('vault API under concurrent requests', () => {
  let t: TestApp;
  let auth: string;
  beforeAll(async () => {
    t = await testApp();
    auth = (await apiKey(t, ALL_PURPOSES)).auth;
  });
  afterAll(async () => t.close());

  it('parallel creates, patches and reads all succeed; each write is stored once with one audit entry', async () => {
    const s = await seed(t, auth);
    const before = await census(t, ['records']);
    const p = person('concurrent');
    const requests = [];
    for (let i = 0; i < 12; i++) {
      requests.push(call(t, { method: 'POST', url: '/v1/customers', auth, payload: { ...p.customer, email: `parallel${i}@concurrent-example.org` } }));
      requests.push(call(t, { method: 'POST', url: `/v1/customers/${s.id}/orders`, auth, payload: { ...p.order, number: `SO-par-${i}` } }));
      requests.push(call(t, { method: 'POST', url: `/v1/customers/${s.id}/addresses`, auth, payload: p.address }));
      requests.push(call(t, { method: 'PATCH', url: `/v1/customers/${s.id}`, auth, payload: { locale: i % 2 === 0 ? 'de-DE' : 'fr-FR' } }));
      requests.push(call(t, { url: `/v1/customers/${s.id}`, auth, purpose: 'support' }));
      requests.push(call(t, { url: `/v1/customers/${s.id}/orders`, auth, purpose: 'fulfilment' }));
    }
    const responses = await Promise.all(requests);
    const failures = responses.filter((r) => r.statusCode >= 300).map((r) => `${r.statusCode} ${r.body.slice(0, 120)}`);
    expect(failures).toEqual([]);
    expect((await census(t, ['records'])).records).toBe(before.records! + 36);
    for (const r of responses) {
      const entries = await t.runtime.store.db.selectFrom('audit_log').select('id').where('request_id', '=', String(r.headers['x-request-id'])).execute();
      expect(entries).toHaveLength(1);
    }
  });

  it('a burst of sequential writes never meets a storage error', async () => {
    const s = await seed(t, auth);
    const statuses: number[] = [];
    for (let i = 0; i < 60; i++) {
      const res = await call(t, { method: 'POST', url: `/v1/customers/${s.id}/orders`, auth, payload: { ...s.p.order, number: `SO-seq-${i}` } });
      statuses.push(res.statusCode);
      const read = await call(t, { url: `/v1/orders/${res.json<{ id?: string }>().id ?? s.orderId}`, auth, purpose: 'account' });
      statuses.push(read.statusCode);
    }
    expect(statuses.filter((c) => c >= 300)).toEqual([]);
  });
});
