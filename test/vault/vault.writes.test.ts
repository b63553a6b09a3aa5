import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp } from '../support/app.ts';
import { apiKey, call, census, CORE_TABLES, expectError, expectNoValues, person, personalStrings, seed } from './helpers.ts';

/**
 * Who may write what: every create, PATCH, address and order goes through the policy, field by
 * field, against the inventory's `write` (DESIGN.md, data flow of a write). The attacks: a key
 * scoped to other purposes rewriting a customer, with or without `Custos-Purpose`.
 */
interface Entry {
  actor: string;
  action: string;
  collection: string | null;
  record_id: string | null;
  fields: string[];
  purpose: string | null;
  outcome: string;
}

describe('writes through the policy', () => {
  let t: TestApp;
  let owner: { auth: string; id: string };
  let analytics: { auth: string; id: string };
  let s: Awaited<ReturnType<typeof seed>>;

  beforeAll(async () => {
    t = await testApp();
    owner = await apiKey(t, ['account', 'fulfilment', 'support']);
    analytics = await apiKey(t, ['analytics']);
    s = await seed(t, owner.auth);
  });
  afterAll(async () => t.close());

  const log = async (customerId: string): Promise<Entry[]> => {
    const res = await call(t, { url: `/v1/customers/${customerId}/access-log`, auth: owner.auth, purpose: 'account' });
    expect(res.statusCode, res.body).toBe(200);
    // Newest first, without this listing's own entry.
    return res.json<{ data: Entry[] }>().data.filter((e) => e.action !== 'audit.read');
  };

  /** Sends `c`, expects 403 POLICY_WRITE_NOT_ALLOWED naming `fields`, and that only the denied entry was added. */
  async function refused(c: Parameters<typeof call>[1], fields: string[]) {
    const before = await census(t, CORE_TABLES);
    const res = await call(t, c);
    const body = expectError(res, 403, 'POLICY_WRITE_NOT_ALLOWED');
    expect((body.error as { fields?: string[] }).fields?.slice().sort()).toEqual([...fields].sort());
    expectNoValues(res, personalStrings(s.p));
    expect(await census(t, CORE_TABLES)).toEqual({ ...before, audit_log: before.audit_log! + 1 });
    return res;
  }

  // Attack: a key scoped only to analytics rewrites a customer's email and date of birth.
  it('an analytics-only key cannot PATCH email or date_of_birth (write outside its purposes), with or without Custos-Purpose', async () => {
    const patch = { email: 'attacker@evil-example.net', date_of_birth: '1970-01-01' };
    await refused({ method: 'PATCH', url: `/v1/customers/${s.id}`, auth: analytics.auth, payload: patch }, ['email', 'date_of_birth']);
    await refused({ method: 'PATCH', url: `/v1/customers/${s.id}`, auth: analytics.auth, purpose: 'analytics', payload: patch }, ['email', 'date_of_birth']);
    // Clearing is writing too.
    await refused({ method: 'PATCH', url: `/v1/customers/${s.id}`, auth: analytics.auth, payload: { phone: null } }, ['phone']);
    const read = await call(t, { url: `/v1/customers/${s.id}`, auth: owner.auth, purpose: 'account' });
    expect(read.json()).toMatchObject({ email: s.p.customer.email, date_of_birth: s.p.customer.date_of_birth, phone: s.p.customer.phone.replace(/\s/g, '') });
  });

  // Attack: the same key records an order, adds an address, or creates a customer.
  it('an analytics-only key cannot create an order, an address or a customer (write outside its purposes)', async () => {
    const p = person();
    await refused({ method: 'POST', url: `/v1/customers/${s.id}/orders`, auth: analytics.auth, payload: p.order }, Object.keys(p.order));
    await refused({ method: 'POST', url: `/v1/customers/${s.id}/addresses`, auth: analytics.auth, purpose: 'analytics', payload: p.address }, Object.keys(p.address));
    await refused({ method: 'POST', url: '/v1/customers', auth: analytics.auth, payload: p.customer }, Object.keys(p.customer));
  });

  it('a refused write is in the access log as a denied attempt: actor, purposes tried, refused fields, never values', async () => {
    const res = await refused({ method: 'PATCH', url: `/v1/customers/${s.id}`, auth: analytics.auth, payload: { date_of_birth: '1970-01-01', locale: 'fr-FR' } }, [
      'date_of_birth',
      'locale',
    ]);
    const [entry] = await log(s.id);
    expect(entry).toMatchObject({
      actor: `apikey:${analytics.id}`,
      action: 'vault.update',
      collection: 'customers',
      record_id: s.id,
      fields: ['date_of_birth', 'locale'],
      purpose: 'analytics',
      outcome: 'denied',
    });
    expect(JSON.stringify(entry)).not.toContain('1970');
    expect(JSON.stringify(entry)).not.toContain('fr-FR');
    expect(res.json<{ error: { purposes: string[] } }>().error.purposes).toEqual(['analytics']);
  });

  // Attack: a key with a writing purpose states a non-writing one and expects the others to cover it.
  it('a key stating a purpose writes through that purpose alone (fulfilment may not correct a name, even on a key that has account)', async () => {
    await refused({ method: 'PATCH', url: `/v1/customers/${s.id}`, auth: owner.auth, purpose: 'fulfilment', payload: { name: 'Someone Else' } }, ['name']);
    const ok = await call(t, { method: 'PATCH', url: `/v1/customers/${s.id}`, auth: owner.auth, purpose: 'account', payload: { name: s.p.customer.name } });
    expect(ok.statusCode, ok.body).toBe(200);
  });

  it('support corrects contact fields and adds addresses, but not the date of birth', async () => {
    const support = await apiKey(t, ['support']);
    const phone = await call(t, { method: 'PATCH', url: `/v1/customers/${s.id}`, auth: support.auth, purpose: 'support', payload: { phone: '+44 20 7946 0001', email: s.p.customer.email } });
    expect(phone.statusCode, phone.body).toBe(200);
    const address = await call(t, { method: 'POST', url: `/v1/customers/${s.id}/addresses`, auth: support.auth, payload: person().address });
    expect(address.statusCode, address.body).toBe(201);
    await refused({ method: 'PATCH', url: `/v1/customers/${s.id}`, auth: support.auth, purpose: 'support', payload: { date_of_birth: '1990-01-01' } }, ['date_of_birth']);
  });

  it("the README quickstart's key creates a customer without Custos-Purpose, through its purposes together; the entry names those used", async () => {
    const res = await call(t, { method: 'POST', url: '/v1/customers', auth: owner.auth, payload: { email: 'ada@example.org', name: 'Ada Lovelace', phone: '+44 20 7946 0958', date_of_birth: '1985-12-10', locale: 'en-GB' } });
    expect(res.statusCode, res.body).toBe(201);
    const id = res.json<{ id: string }>().id;
    const [entry] = await log(id);
    // date_of_birth only through account; the rest through account or support; fulfilment writes none of them.
    expect(entry).toMatchObject({ action: 'vault.create', outcome: 'success', purpose: 'account,support' });
    const stated = await call(t, { method: 'PATCH', url: `/v1/customers/${id}`, auth: owner.auth, purpose: 'support', payload: { locale: 'en-US' } });
    expect(stated.statusCode, stated.body).toBe(200);
    expect((await log(id))[0]).toMatchObject({ action: 'vault.update', purpose: 'support', fields: ['locale'] });
  });

  it('a staff member or customer writing without a purpose is told to state the purpose of this write', async () => {
    const actor = { ref: 'customer:cus_00000000000000000000000001', kind: 'customer' as const, purposes: ['account'] };
    const error = await t.runtime.vault.updateCustomer({ actor, purpose: undefined, requestId: 'r' }, s.id, { locale: 'en-GB' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'POLICY_PURPOSE_REQUIRED', message: 'state the purpose of this write in the Custos-Purpose header' });
  });

  it('a customer read is logged under collection customers, with the address fields named', async () => {
    const res = await call(t, { url: `/v1/customers/${s.id}`, auth: owner.auth, purpose: 'fulfilment' });
    expect(res.statusCode).toBe(200);
    const entry = (await log(s.id)).find((e) => e.action === 'vault.read');
    expect(entry).toMatchObject({ collection: 'customers', record_id: s.id });
    expect(entry?.fields).toEqual(expect.arrayContaining(['email', 'addresses.city']));
  });

  it("support sees an address's city masked the same way in the customer's addresses and in an order's shipping address", async () => {
    const res = await call(t, { url: `/v1/customers/${s.id}`, auth: owner.auth, purpose: 'support' });
    const order = await call(t, { url: `/v1/orders/${s.orderId}`, auth: owner.auth, purpose: 'support' });
    const address = res.json<{ addresses: Record<string, string>[] }>().addresses.find((a) => a.id === s.addressId)!;
    const shipping = order.json<{ shipping_address: Record<string, string> }>().shipping_address;
    expect(address.city).toBe('Wu***');
    expect(address.region).toBe('No***');
    for (const key of ['line1', 'city', 'postal_code', 'country'] as const) expect(shipping[key], key).toBe(address[key]);
    expectNoValues(res, [s.p.address.city, s.p.address.region]);
  });
});

describe('a write-only purpose (access: none, write: true)', () => {
  let t: TestApp;
  beforeAll(async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'custos-inv-')), 'shop.yaml');
    writeFileSync(
      file,
      [
        'version: 1',
        'extends: default',
        'purposes:',
        '  checkout:',
        '    description: The storefront checkout stores what the customer typed, and reads nothing back.',
        'collections:',
        '  customers:',
        '    fields:',
        '      email:',
        '        { type: email, category: contact, protection: searchable, retention: account_lifetime, mask: email, export: true,',
        '          purposes: { account: { basis: contract }, checkout: { basis: contract, access: none, write: true } } }',
        '',
      ].join('\n'),
    );
    t = await testApp({ env: { CUSTOS_INVENTORY: file } });
  });
  afterAll(async () => t.close());

  it('writes the fields it may write, reads nothing, may not look up by them, and may write nothing else', async () => {
    const checkout = await apiKey(t, ['checkout']);
    const created = await call(t, { method: 'POST', url: '/v1/customers', auth: checkout.auth, payload: { email: 'kasse@example.org' } });
    expect(created.statusCode, created.body).toBe(201);
    const id = created.json<{ id: string }>().id;
    const read = await call(t, { url: `/v1/customers/${id}`, auth: checkout.auth, purpose: 'checkout' });
    expect(read.statusCode).toBe(200);
    expect(read.json()).not.toHaveProperty('email');
    expectNoValues(read, ['kasse@example.org']);
    const lookup = await call(t, { url: '/v1/customers?email=kasse@example.org', auth: checkout.auth, purpose: 'checkout' });
    expectError(lookup, 403, 'VAULT_LOOKUP_NOT_ALLOWED');
    expectError(await call(t, { method: 'PATCH', url: `/v1/customers/${id}`, auth: checkout.auth, payload: { name: 'X Y' } }), 403, 'POLICY_WRITE_NOT_ALLOWED');
  });

  // Attack: a write-only key probes whether an email is a customer's by storing it again; the
  // 409 must not name the customer it may not look up.
  it('a write-only key storing an email already held gets 409 without the existing id (duplicate probe)', async () => {
    const checkout = await apiKey(t, ['checkout']);
    const first = await call(t, { method: 'POST', url: '/v1/customers', auth: checkout.auth, payload: { email: 'probe@example.org' } });
    expect(first.statusCode, first.body).toBe(201);
    const probe = await call(t, { method: 'POST', url: '/v1/customers', auth: checkout.auth, payload: { email: 'PROBE@example.org ' } });
    expect(expectError(probe, 409, 'VAULT_EMAIL_TAKEN').error).not.toHaveProperty('existing_id');
    expect(probe.body).not.toContain(first.json<{ id: string }>().id);
  });
});
