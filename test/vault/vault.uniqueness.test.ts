import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp } from '../support/app.ts';
import { apiKey, call, census, CORE_TABLES, expectError, expectNoValues, person } from './helpers.ts';

/**
 * One person, one record: an email belongs to at most one customer, and an order number to at
 * most one order of a customer. The database enforces both inside the write, so writes racing
 * each other cannot both pass; the existing customer's id is told only to a caller that could
 * have looked that email up.
 */
describe('one person, one record', () => {
  let t: TestApp;
  let shop: string;
  beforeAll(async () => {
    t = await testApp();
    shop = (await apiKey(t, ['account', 'fulfilment', 'support'])).auth;
  });
  afterAll(async () => t.close());

  const create = (auth: string, payload: unknown, purpose?: string) => call(t, { method: 'POST', url: '/v1/customers', auth, payload, purpose });

  it('a second customer with an email already stored (another case, spaces) is refused with 409 and the existing id', async () => {
    const p = person();
    const first = await create(shop, p.customer);
    expect(first.statusCode).toBe(201);
    const before = await census(t, CORE_TABLES);
    const again = await create(shop, { ...p.customer, email: `  ${p.customer.email.toUpperCase()} ` });
    const body = expectError(again, 409, 'VAULT_EMAIL_TAKEN');
    expect(body.error).toMatchObject({ existing_id: first.json<{ id: string }>().id });
    expectNoValues(again, [p.customer.email, p.customer.name]);
    const after = await census(t, CORE_TABLES);
    // Nothing stored but the audit entry of the disclosed id (a lookup by email).
    expect({ ...after, audit_log: 0 }).toEqual({ ...before, audit_log: 0 });
    expect(after.audit_log).toBe(before.audit_log! + 1);
    const log = await call(t, { url: `/v1/customers/${first.json<{ id: string }>().id}/access-log`, auth: shop, purpose: 'account' });
    expect(log.json<{ data: { action: string; fields: string[] }[] }>().data.some((e) => e.action === 'vault.lookup' && e.fields.length === 0)).toBe(true);
  });

  it('a caller that may not look customers up by email learns no id from the 409 (duplicate probe)', async () => {
    const p = person();
    const id = (await create(shop, p.customer)).json<{ id: string }>().id;
    // A key whose purposes may not write an email is refused before uniqueness is looked at.
    const analytics = (await apiKey(t, ['analytics'])).auth;
    const probe = await create(analytics, { email: p.customer.email });
    expectError(probe, 403, 'POLICY_WRITE_NOT_ALLOWED');
    expect(probe.body).not.toContain(id);
    // A key that may look up, stating a purpose that may not, learns no id either.
    const stated = await create(shop, { email: p.customer.email, locale: 'de-DE' }, 'support');
    expect(expectError(stated, 409, 'VAULT_EMAIL_TAKEN').error).toHaveProperty('existing_id', id);
    const marketing = (await apiKey(t, ['account', 'marketing'])).auth;
    const viaConsent = await create(marketing, { email: p.customer.email }, 'marketing');
    expectError(viaConsent, 403, 'POLICY_WRITE_NOT_ALLOWED');
    expect(viaConsent.body).not.toContain(id);
  });

  it('PATCHing an email to one another customer holds is refused with 409; the record keeps its email', async () => {
    const a = person();
    const b = person();
    await create(shop, a.customer);
    const bId = (await create(shop, b.customer)).json<{ id: string }>().id;
    const patch = await call(t, { method: 'PATCH', url: `/v1/customers/${bId}`, auth: shop, payload: { email: a.customer.email } });
    expectError(patch, 409, 'VAULT_EMAIL_TAKEN');
    const read = await call(t, { url: `/v1/customers/${bId}`, auth: shop, purpose: 'account' });
    expect(read.json()).toMatchObject({ email: b.customer.email });
    // Its own email again is no conflict.
    expect((await call(t, { method: 'PATCH', url: `/v1/customers/${bId}`, auth: shop, payload: { email: b.customer.email } })).statusCode).toBe(200);
    const found = await call(t, { url: `/v1/customers?email=${encodeURIComponent(a.customer.email)}`, auth: shop, purpose: 'account' });
    expect(found.json<{ data: unknown[] }>().data).toHaveLength(1);
  });

  it('ten concurrent creates with one email: exactly one succeeds (race for a duplicate)', async () => {
    const p = person();
    const results = await Promise.all(Array.from({ length: 10 }, () => create(shop, p.customer)));
    expect(results.map((r) => r.statusCode).sort()).toEqual([201, ...Array<number>(9).fill(409)]);
    for (const r of results.filter((x) => x.statusCode === 409)) expect(r.json<{ error: { code: string } }>().error.code).toBe('VAULT_EMAIL_TAKEN');
    const found = await call(t, { url: `/v1/customers?email=${encodeURIComponent(p.customer.email)}`, auth: shop, purpose: 'account' });
    expect(found.json<{ data: unknown[] }>().data).toHaveLength(1);
  });

  it('an order number recorded twice for one customer is refused with 409, also when racing; another customer may use it', async () => {
    const p = person();
    const id = (await create(shop, p.customer)).json<{ id: string }>().id;
    const order = (cid: string) => call(t, { method: 'POST', url: `/v1/customers/${cid}/orders`, auth: shop, payload: p.order });
    const racing = await Promise.all(Array.from({ length: 6 }, () => order(id)));
    expect(racing.map((r) => r.statusCode).sort()).toEqual([201, 409, 409, 409, 409, 409]);
    expectError(racing.find((r) => r.statusCode === 409)!, 409, 'VAULT_ORDER_NUMBER_TAKEN');
    const list = await call(t, { url: `/v1/customers/${id}/orders`, auth: shop, purpose: 'account' });
    expect(list.json<{ data: unknown[] }>().data).toHaveLength(1);
    const other = (await create(shop, person().customer)).json<{ id: string }>().id;
    expect((await order(other)).statusCode).toBe(201);
  });
});
