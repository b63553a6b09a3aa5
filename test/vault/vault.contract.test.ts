import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp } from '../support/app.ts';
import { apiKey, call, expectError, person, seed } from './helpers.ts';

/**
 * The contract shop backends code against: every path and status of the vault API, the JSON field
 * names of customers, addresses and orders, lookup by the normalised email or phone, and PATCH
 * semantics (a change re-indexes, null clears).
 */
describe('vault API contract', () => {
  let t: TestApp;
  let account: string;
  beforeAll(async () => {
    t = await testApp();
    account = (await apiKey(t, ['account'])).auth;
  });
  afterAll(async () => t.close());

  const find = async (query: string, purpose = 'account') => {
    const res = await call(t, { url: `/v1/customers?${query}`, auth: account, purpose });
    expect(res.statusCode, res.body).toBe(200);
    return res.json<{ data: { id: string }[] }>().data.map((c) => c.id);
  };

  it('GET /health answers 200 without a key', async () => {
    const res = await call(t, { url: '/health' });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ status: 'ok' });
  });

  it('POST /v1/customers answers 201 with exactly { id } (a cus_ id)', async () => {
    const res = await call(t, { method: 'POST', url: '/v1/customers', auth: account, payload: person().customer });
    expect(res.statusCode).toBe(201);
    const body = res.json<Record<string, unknown>>();
    expect(Object.keys(body)).toEqual(['id']);
    expect(body.id).toMatch(/^cus_[0-9A-HJKMNP-TV-Z]{26}$/);
  });

  it('POST addresses and orders answer 201 { id } with adr_ / ord_ ids', async () => {
    const s = await seed(t, account);
    expect(s.addressId).toMatch(/^adr_[0-9A-HJKMNP-TV-Z]{26}$/);
    expect(s.orderId).toMatch(/^ord_[0-9A-HJKMNP-TV-Z]{26}$/);
  });

  it('GET /v1/customers/{id} returns the declared customer and address field names', async () => {
    const s = await seed(t, account);
    const res = await call(t, { url: `/v1/customers/${s.id}`, auth: account, purpose: 'account' });
    expect(res.statusCode).toBe(200);
    const body = res.json<Record<string, unknown>>();
    expect(Object.keys(body).sort()).toEqual(['addresses', 'created_at', 'date_of_birth', 'email', 'id', 'locale', 'name', 'phone', 'updated_at']);
    expect(body).toMatchObject({
      id: s.id,
      email: s.p.customer.email,
      name: s.p.customer.name,
      phone: s.p.customer.phone.replace(/\s/g, ''),
      date_of_birth: '1984-03-07',
      locale: 'de-DE',
    });
    const addresses = body.addresses as Record<string, unknown>[];
    expect(addresses).toHaveLength(1);
    expect(Object.keys(addresses[0]!).sort()).toEqual(['city', 'country', 'created_at', 'id', 'line1', 'line2', 'postal_code', 'region', 'updated_at']);
    expect(addresses[0]).toMatchObject({ id: s.addressId, ...s.p.address });
  });

  it('GET /v1/orders/{id} returns the declared order field names, items and both addresses', async () => {
    const s = await seed(t, account);
    const res = await call(t, { url: `/v1/orders/${s.orderId}`, auth: account, purpose: 'account' });
    expect(res.statusCode).toBe(200);
    const body = res.json<Record<string, unknown>>();
    expect(Object.keys(body).sort()).toEqual(
      ['billing_address', 'created_at', 'currency', 'customer_id', 'id', 'items', 'number', 'placed_at', 'shipping_address', 'status', 'total', 'updated_at'].sort(),
    );
    expect(body).toMatchObject({
      id: s.orderId,
      customer_id: s.id,
      number: s.p.order.number,
      placed_at: s.p.order.placed_at,
      currency: 'EUR',
      total: '129.90',
      status: 'paid',
      shipping_address: s.p.order.shipping_address,
      billing_address: s.p.order.billing_address,
    });
    const items = body.items as Record<string, unknown>[];
    expect(items.map((i) => Object.keys(i).sort())).toEqual([
      ['name', 'quantity', 'sku', 'unit_price'],
      ['name', 'quantity', 'sku', 'unit_price'],
    ]);
    expect(items[0]).toEqual(s.p.order.items[0]);
  });

  it('GET /v1/customers/{id}/orders pages newest first with next_cursor, each order once', async () => {
    const s = await seed(t, account);
    for (let i = 0; i < 4; i++) {
      const res = await call(t, { method: 'POST', url: `/v1/customers/${s.id}/orders`, auth: account, payload: { ...s.p.order, number: `SO-page-${i}` } });
      expect(res.statusCode).toBe(201);
    }
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const res = await call(t, { url: `/v1/customers/${s.id}/orders?limit=2${cursor === null ? '' : `&cursor=${cursor}`}`, auth: account, purpose: 'account' });
      expect(res.statusCode, res.body).toBe(200);
      const page = res.json<{ data: { id: string; customer_id: string; number: string }[]; next_cursor: string | null }>();
      expect(page.data.length).toBeLessThanOrEqual(2);
      for (const o of page.data) expect(o.customer_id).toBe(s.id);
      seen.push(...page.data.map((o) => o.id));
      cursor = page.next_cursor;
      pages += 1;
    } while (cursor !== null && pages < 10);
    expect(seen).toHaveLength(5);
    expect(new Set(seen).size).toBe(5);
    expect([...seen].sort().reverse()).toEqual(seen);
  });

  it('GET /v1/customers?email= finds by the normalised email (trim, case)', async () => {
    const s = await seed(t, account);
    const [local, domain] = s.p.customer.email.split('@') as [string, string];
    const query = encodeURIComponent(`  ${local.toUpperCase()}@${domain.toUpperCase()} `);
    expect(await find(`email=${query}`)).toEqual([s.id]);
    const res = await call(t, { url: `/v1/customers?email=${query}`, auth: account, purpose: 'account' });
    const data = res.json<{ data: Record<string, unknown>[] }>().data;
    expect(data[0]).toMatchObject({ id: s.id, email: s.p.customer.email, name: s.p.customer.name });
    expect(Array.isArray(data[0]?.addresses)).toBe(true);
  });

  it('stores the email normalised, so a write in other case finds the same customer', async () => {
    const res = await call(t, { method: 'POST', url: '/v1/customers', auth: account, payload: { email: '  Kasimir.Ebert@Example.ORG ' } });
    expect(res.statusCode).toBe(201);
    const id = res.json<{ id: string }>().id;
    // U+212A KELVIN SIGN is canonically equivalent to K: NFC, then lower case, makes it 'k'.
    expect(await find(`email=${encodeURIComponent(' \u212Aasimir.Ebert@example.org')}`)).toEqual([id]);
    const read = await call(t, { url: `/v1/customers/${id}`, auth: account, purpose: 'account' });
    expect(read.json<{ email: string }>().email).toBe('kasimir.ebert@example.org');
  });

  it('an international email (RFC 6531) is stored and found under its NFC form', async () => {
    const composed = 'José.Müller@Bücher-Example.de'.normalize('NFC');
    const res = await call(t, { method: 'POST', url: '/v1/customers', auth: account, payload: { email: composed } });
    expect(res.statusCode, res.body).toBe(201);
    const id = res.json<{ id: string }>().id;
    const decomposed = composed.normalize('NFD').toUpperCase();
    expect(decomposed).not.toBe(composed.toUpperCase());
    expect(await find(`email=${encodeURIComponent(decomposed)}`)).toEqual([id]);
  });

  it('GET /v1/customers?phone= finds by E.164: "+49 151 2345 6789" finds "+4915123456789"', async () => {
    const res = await call(t, { method: 'POST', url: '/v1/customers', auth: account, payload: { phone: '+4915123456789', name: 'Phone Lookup' } });
    expect(res.statusCode).toBe(201);
    const id = res.json<{ id: string }>().id;
    expect(await find(`phone=${encodeURIComponent('+49 151 2345 6789')}`)).toContain(id);
    expect(await find(`phone=${encodeURIComponent('+49 (151) 2345-6789')}`)).toContain(id);
    const read = await call(t, { url: `/v1/customers/${id}`, auth: account, purpose: 'account' });
    expect(read.json<{ phone: string }>().phone).toBe('+4915123456789');
  });

  it('a lookup that matches nothing answers 200 { data: [] }', async () => {
    expect(await find(`email=${encodeURIComponent('nobody-at-all@nowhere-example.org')}`)).toEqual([]);
  });

  it('a lookup needs exactly one of email or phone: 400 VAULT_LOOKUP_INVALID', async () => {
    for (const q of ['', 'email=a%40b.org&phone=%2B4915123456789', 'email=', 'phone=not-a-phone']) {
      const res = await call(t, { url: `/v1/customers?${q}`, auth: account, purpose: 'account' });
      expectError(res, 400, 'VAULT_LOOKUP_INVALID');
    }
  });

  it('PATCH changes a field and answers 200 { id, updated_at }', async () => {
    const s = await seed(t, account);
    const res = await call(t, { method: 'PATCH', url: `/v1/customers/${s.id}`, auth: account, payload: { name: 'Renamed Person', locale: 'fr-FR' } });
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<Record<string, unknown>>();
    expect(Object.keys(body).sort()).toEqual(['id', 'updated_at']);
    expect(body.id).toBe(s.id);
    const read = await call(t, { url: `/v1/customers/${s.id}`, auth: account, purpose: 'account' });
    expect(read.json()).toMatchObject({ name: 'Renamed Person', locale: 'fr-FR', email: s.p.customer.email, updated_at: body.updated_at });
  });

  it('PATCH of the email re-indexes: the old email no longer finds it, the new one does', async () => {
    const s = await seed(t, account);
    const before = encodeURIComponent(s.p.customer.email);
    expect(await find(`email=${before}`)).toEqual([s.id]);
    const res = await call(t, { method: 'PATCH', url: `/v1/customers/${s.id}`, auth: account, payload: { email: 'Moved.Away@Elsewhere-Example.org' } });
    expect(res.statusCode, res.body).toBe(200);
    expect(await find(`email=${before}`)).toEqual([]);
    expect(await find(`email=${encodeURIComponent('moved.away@elsewhere-example.org')}`)).toEqual([s.id]);
    // The phone index is untouched by a patch that does not mention the phone.
    expect(await find(`phone=${encodeURIComponent(s.p.customer.phone)}`)).toContain(s.id);
  });

  it('PATCH with null clears a field and its index', async () => {
    const s = await seed(t, account);
    const res = await call(t, { method: 'PATCH', url: `/v1/customers/${s.id}`, auth: account, payload: { email: null, date_of_birth: null } });
    expect(res.statusCode, res.body).toBe(200);
    const read = await call(t, { url: `/v1/customers/${s.id}`, auth: account, purpose: 'account' });
    const body = read.json<Record<string, unknown>>();
    expect(body).not.toHaveProperty('email');
    expect(body).not.toHaveProperty('date_of_birth');
    expect(body.name).toBe(s.p.customer.name);
    expect(await find(`email=${encodeURIComponent(s.p.customer.email)}`)).toEqual([]);
  });

  it('GET /v1/customers/{id}/access-log answers 200 { data: [...], head }', async () => {
    const s = await seed(t, account);
    const res = await call(t, { url: `/v1/customers/${s.id}/access-log`, auth: account, purpose: 'account' });
    expect(res.statusCode).toBe(200);
    const body = res.json<{ data: Record<string, unknown>[]; head: unknown }>();
    expect(Object.keys(body).sort()).toEqual(['data', 'head']);
    expect(body.data.length).toBeGreaterThanOrEqual(3);
    expect(Object.keys(body.data[0]!).sort()).toEqual([
      'action',
      'actor',
      'at',
      'collection',
      'fields',
      'id',
      'outcome',
      'proof',
      'purpose',
      'record_id',
      'request_id',
      'subject_id',
      'withheld_hash',
    ]);
  });
});
