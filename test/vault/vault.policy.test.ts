import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp } from '../support/app.ts';
import { ALL_PURPOSES, apiKey, call, census, CORE_TABLES, expectError, expectNoValues, person, personalStrings, seed, unknownId } from './helpers.ts';

/**
 * Purpose policy through the API: each purpose sees only what the inventory grants it, masked
 * where it says so (GDPR Art. 5(1)(b)-(c), Art. 25); consent-based purposes see nothing without a
 * recorded consent (Art. 6(1)(a)); a caller cannot state a purpose it is not scoped to.
 */
describe('vault API purpose policy', () => {
  let t: TestApp;
  let all: string;
  let s: Awaited<ReturnType<typeof seed>>;
  beforeAll(async () => {
    t = await testApp();
    all = (await apiKey(t, ALL_PURPOSES)).auth;
    s = await seed(t, all, person('policy'));
  });
  afterAll(async () => t.close());

  const readPaths = () => [
    `/v1/customers/${s.id}`,
    `/v1/customers?email=${encodeURIComponent(s.p.customer.email)}`,
    `/v1/customers?phone=${encodeURIComponent(s.p.customer.phone)}`,
    `/v1/customers/${s.id}/orders`,
    `/v1/orders/${s.orderId}`,
    `/v1/customers/${s.id}/access-log`,
  ];
  const e164 = () => s.p.customer.phone.replace(/\s/g, '');
  type Entry = { id: number; actor: string; action: string; subject_id: string | null; collection: string | null; record_id: string | null; fields: string; purpose: string | null; outcome: string };
  const lastAuditId = async () => Number((await t.runtime.store.db.selectFrom('audit_log').select((eb) => eb.fn.max('id').as('id')).executeTakeFirst())?.id ?? 0);
  const auditSince = async (id: number) =>
    (await t.runtime.store.db
      .selectFrom('audit_log')
      .select(['id', 'actor', 'action', 'subject_id', 'collection', 'record_id', 'fields', 'purpose', 'outcome'])
      .where('id', '>', id)
      .orderBy('id')
      .execute()) as Entry[];

  it('fulfilment gets name, contact and the shipping address, never the date of birth or billing address', async () => {
    const res = await call(t, { url: `/v1/customers/${s.id}`, auth: all, purpose: 'fulfilment' });
    expect(res.statusCode).toBe(200);
    const c = res.json<Record<string, unknown> & { addresses: Record<string, unknown>[] }>();
    expect(c).toMatchObject({ name: s.p.customer.name, email: s.p.customer.email, phone: e164() });
    expect(c).not.toHaveProperty('date_of_birth');
    expect(res.body).not.toContain('1984-03-07');
    expect(c.addresses[0]).toMatchObject(s.p.address);
    const order = await call(t, { url: `/v1/orders/${s.orderId}`, auth: all, purpose: 'fulfilment' });
    expect(order.statusCode).toBe(200);
    const o = order.json<Record<string, unknown>>();
    expect(o.shipping_address).toEqual(s.p.order.shipping_address);
    expect(o).not.toHaveProperty('billing_address');
    expectNoValues(order, [s.p.order.billing_address.name, s.p.order.billing_address.line1]);
  });

  it('support gets a masked email and phone; the clear values appear nowhere in any body', async () => {
    const clear = [s.p.customer.email, e164(), e164().slice(1), s.p.customer.phone, s.p.address.line1];
    for (const url of [`/v1/customers/${s.id}`, `/v1/customers?email=${encodeURIComponent(s.p.customer.email)}`]) {
      const res = await call(t, { url, auth: all, purpose: 'support' });
      expect(res.statusCode).toBe(200);
      const body = res.json<Record<string, unknown>>();
      const c = (Array.isArray(body.data) ? body.data[0] : body) as Record<string, unknown>;
      expect(c.id).toBe(s.id);
      expect(c.email).toEqual(expect.stringContaining('***'));
      expect(c.email).not.toBe(s.p.customer.email);
      expect(c.phone).toMatch(/^\+49\*+\d{2}$/);
      expectNoValues(res, clear);
      // The local part of the email is not recoverable from the mask.
      expect(res.body).not.toContain(s.p.customer.email.split('@')[0]!);
    }
    const orders = await call(t, { url: `/v1/customers/${s.id}/orders`, auth: all, purpose: 'support' });
    expect(orders.statusCode).toBe(200);
    expectNoValues(orders, [s.p.order.shipping_address.line1, s.p.order.billing_address.line1, s.p.order.billing_address.name]);
  });

  it('a lookup reveals no match to a purpose that may not see the field, nor to a consent purpose without consent', async () => {
    const analytics = await call(t, { url: `/v1/customers?email=${encodeURIComponent(s.p.customer.email)}`, auth: all, purpose: 'analytics' });
    expectError(analytics, 403, 'VAULT_LOOKUP_NOT_ALLOWED');
    const marketing = await call(t, { url: `/v1/customers?email=${encodeURIComponent(s.p.customer.email)}`, auth: all, purpose: 'marketing' });
    expect(marketing.statusCode).toBe(200);
    expect(marketing.json<{ data: unknown[] }>().data).toEqual([]);
  });

  it('fraud prevention sees the year of birth only', async () => {
    const res = await call(t, { url: `/v1/customers/${s.id}`, auth: all, purpose: 'fraud_prevention' });
    expect(res.statusCode).toBe(200);
    expect(res.json<{ date_of_birth: string }>().date_of_birth).toBe('1984-**-**');
    expect(res.body).not.toContain('1984-03-07');
  });

  for (const purpose of ['marketing', 'analytics']) {
    it(`${purpose} (consent-based, no consent recorded) releases nothing personal from any read`, async () => {
      for (const url of readPaths().slice(0, 5)) {
        const res = await call(t, { url, auth: all, purpose });
        // A lookup by a field the purpose may never see is refused outright: it would reveal membership.
        if (url.includes('?') && res.statusCode === 403) {
          expectError(res, 403, 'VAULT_LOOKUP_NOT_ALLOWED');
          continue;
        }
        expect(res.statusCode, `${url}: ${res.body}`).toBe(200);
        expectNoValues(res, [...personalStrings(s.p), e164(), 'de-DE', '1984-03', s.p.order.shipping_address.postal_code]);
        const body = res.json<Record<string, unknown>>();
        const records = (Array.isArray(body.data) ? body.data : [body]) as Record<string, unknown>[];
        for (const r of records) {
          for (const key of ['email', 'name', 'phone', 'date_of_birth', 'locale', 'shipping_address', 'billing_address', 'items'])
            expect(r, `${url} released ${key}`).not.toHaveProperty(key);
          for (const a of (r.addresses ?? []) as Record<string, unknown>[])
            expect(Object.keys(a).sort()).toEqual(['created_at', 'id', 'updated_at']);
        }
      }
    });
  }

  it('a purpose the key is not scoped to is refused on every read: 403 POLICY_PURPOSE_NOT_ALLOWED, recorded as denied', async () => {
    const support = await apiKey(t, ['support']);
    const missing = unknownId('cus');
    const attempts = [...readPaths(), `/v1/customers/${missing}`, `/v1/orders/${unknownId('ord')}`];
    const from = await lastAuditId();
    for (const url of attempts) {
      const res = await call(t, { url, auth: support.auth, purpose: 'fulfilment' });
      const body = expectError(res, 403, 'POLICY_PURPOSE_NOT_ALLOWED');
      expectNoValues(JSON.stringify(body), personalStrings(s.p));
    }
    // PCI DSS 4.0.1 10.2.1.4: each invalid access attempt is an entry of its own, naming who, what
    // and why, but no field and no value (the looked-up email and phone are nowhere in the log).
    const denied = await auditSince(from);
    expect(denied).toHaveLength(attempts.length);
    for (const e of denied) expect(e).toMatchObject({ actor: `apikey:${support.id}`, outcome: 'denied', purpose: 'fulfilment', fields: '[]' });
    expect(denied.map((e) => [e.action, e.subject_id, e.collection, e.record_id])).toEqual([
      ['vault.read', s.id, 'customers', s.id],
      ['vault.lookup', null, 'customers', null],
      ['vault.lookup', null, 'customers', null],
      ['vault.read', s.id, 'orders', null],
      ['vault.read', null, 'orders', s.orderId],
      ['audit.read', s.id, 'customers', s.id],
      ['vault.read', missing, 'customers', missing],
      ['vault.read', null, 'orders', expect.stringMatching(/^ord_/)],
    ]);
    expectNoValues(JSON.stringify(denied), [...personalStrings(s.p), s.p.customer.email.toLowerCase(), e164()]);
    // The customer's access log shows the refused attempts on their record too.
    const log = await call(t, { url: `/v1/customers/${s.id}/access-log`, auth: all, purpose: 'account' });
    const mine = log.json<{ data: { actor: string; outcome: string; action: string }[] }>().data.filter((e) => e.actor === `apikey:${support.id}`);
    expect(mine.map((e) => `${e.action} ${e.outcome}`).sort()).toEqual(['audit.read denied', 'vault.read denied', 'vault.read denied']);
  });

  it('a write stating a purpose the key is not scoped to is refused, stores nothing and is recorded as denied', async () => {
    const supportKey = await apiKey(t, ['support']);
    const support = supportKey.auth;
    const before = await census(t, CORE_TABLES);
    const from = await lastAuditId();
    const p = person('policy-write');
    const writes = [
      { method: 'POST' as const, url: '/v1/customers', payload: p.customer },
      { method: 'PATCH' as const, url: `/v1/customers/${s.id}`, payload: { name: 'Not Allowed' } },
      { method: 'POST' as const, url: `/v1/customers/${s.id}/addresses`, payload: p.address },
      { method: 'POST' as const, url: `/v1/customers/${s.id}/orders`, payload: p.order },
    ];
    for (const w of writes) {
      const res = await call(t, { ...w, auth: support, purpose: 'marketing' });
      expectNoValues(JSON.stringify(expectError(res, 403, 'POLICY_PURPOSE_NOT_ALLOWED')), personalStrings(p));
    }
    // Nothing stored but the four entries recording the refused attempts.
    expect(await census(t, CORE_TABLES)).toEqual({ ...before, audit_log: before.audit_log! + 4 });
    const denied = await auditSince(from);
    expect(denied.map((e) => [e.actor, e.action, e.subject_id, e.collection, e.outcome, e.purpose, e.fields])).toEqual([
      [`apikey:${supportKey.id}`, 'vault.create', null, 'customers', 'denied', 'marketing', '[]'],
      [`apikey:${supportKey.id}`, 'vault.update', s.id, 'customers', 'denied', 'marketing', '[]'],
      [`apikey:${supportKey.id}`, 'vault.create', s.id, 'addresses', 'denied', 'marketing', '[]'],
      [`apikey:${supportKey.id}`, 'vault.create', s.id, 'orders', 'denied', 'marketing', '[]'],
    ]);
    expectNoValues(JSON.stringify(denied), personalStrings(p));
    const read = await call(t, { url: `/v1/customers/${s.id}`, auth: all, purpose: 'account' });
    expect(read.json<{ name: string }>().name).toBe(s.p.customer.name);
  });

  it('a read without Custos-Purpose is refused: 400 POLICY_PURPOSE_REQUIRED', async () => {
    for (const url of readPaths()) {
      expectError(await call(t, { url, auth: all }), 400, 'POLICY_PURPOSE_REQUIRED');
      expectError(await call(t, { url, auth: all, purpose: '' }), 400, 'POLICY_PURPOSE_REQUIRED');
    }
  });

  it('an undeclared purpose is refused: 400 POLICY_PURPOSE_UNKNOWN (also for case variants), and caller text is not logged', async () => {
    const from = await lastAuditId();
    for (const url of readPaths())
      for (const purpose of ['curiosity', 'Support', 'FULFILMENT', '__proto__', 'constructor', 'toString'])
        expectError(await call(t, { url, auth: all, purpose }), 400, 'POLICY_PURPOSE_UNKNOWN');
    expect(await auditSince(from)).toEqual([]);
  });
});
