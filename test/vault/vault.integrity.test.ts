import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { createLogger } from '../../src/kernel/logger.ts';
import { openRuntime } from '../../src/runtime.ts';
import { testApp, type TestApp } from '../support/app.ts';
import { ALL_PURPOSES, apiKey, call, expectError, expectNoValues, person, personalStrings, seed } from './helpers.ts';

/**
 * Crypto binding through the store. Attack: someone with write access to the database (but not
 * the keys) edits `records` directly — moves a record's envelope into another customer's row,
 * another address or order of the same customer (same data key), or another collection; removes,
 * adds or reorders a field; changes a plain field, the record version or the owning customer —
 * hoping a read releases a moved or altered record. Each record is sealed whole (one AES-256-GCM
 * envelope) with associated data naming collection, record, subject, key version, record version,
 * the protected fields' names and the plain fields, so every such read must fail with 500
 * VAULT_INTEGRITY_FAILURE and release nothing (DESIGN.md, Keys; OWASP ASVS 5.0 11.3.x
 * authenticated encryption; docs/adr/0003-record-envelope.md).
 */
interface Stored {
  s: string;
  n: string[];
  p: Record<string, unknown>;
}

describe('vault records are sealed whole and bound to their row', () => {
  let t: TestApp;
  let auth: string;
  beforeAll(async () => {
    t = await testApp();
    auth = (await apiKey(t, ALL_PURPOSES)).auth;
  });
  afterAll(async () => t.close());

  const load = async (id: string): Promise<Stored> => {
    const row = await t.runtime.store.db.selectFrom('records').select('data').where('id', '=', id).executeTakeFirstOrThrow();
    return JSON.parse(row.data) as Stored;
  };
  const store = async (id: string, data: Stored) => {
    const r = await t.runtime.store.db.updateTable('records').set({ data: JSON.stringify(data) }).where('id', '=', id).executeTakeFirst();
    expect(Number(r.numUpdatedRows)).toBe(1);
  };
  const setColumns = async (id: string, columns: { version?: number; subject_id?: string }) => {
    const r = await t.runtime.store.db.updateTable('records').set(columns).where('id', '=', id).executeTakeFirst();
    expect(Number(r.numUpdatedRows)).toBe(1);
  };

  /** Expects the read to refuse with VAULT_INTEGRITY_FAILURE and to carry none of `values`. */
  async function expectIntegrityFailure(url: string, purpose: string, values: string[]) {
    const res = await call(t, { url, auth, purpose });
    const body = expectError(res, 500, 'VAULT_INTEGRITY_FAILURE');
    expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'request_id']);
    expectNoValues(res, values);
  }
  const newOrder = async (customerId: string, order: object) => {
    const res = await call(t, { method: 'POST', url: `/v1/customers/${customerId}/orders`, auth, payload: order });
    expect(res.statusCode, res.body).toBe(201);
    return res.json<{ id: string }>().id;
  };

  it('stores protected fields in one r1 envelope per record, never in clear', async () => {
    const s = await seed(t, auth);
    const data = await load(s.id);
    expect(Object.keys(data).sort()).toEqual(['n', 'p', 's']);
    expect(data.n).toEqual(['date_of_birth', 'email', 'locale', 'name', 'phone']);
    expect(data.s).toMatch(/^r1\.\d+\.[A-Za-z0-9_-]+$/);
    const raw = JSON.stringify(data) + JSON.stringify(await load(s.addressId)) + JSON.stringify(await load(s.orderId));
    expectNoValues(raw, personalStrings(s.p));
  });

  it("another customer's envelope copied into this customer's row fails to open", async () => {
    const a = await seed(t, auth);
    const b = await seed(t, auth);
    await store(b.id, await load(a.id));
    await expectIntegrityFailure(`/v1/customers/${b.id}`, 'account', [...personalStrings(a.p), ...personalStrings(b.p)]);
    // The victim row still reads fine: only the tampered row is refused.
    const ok = await call(t, { url: `/v1/customers/${a.id}`, auth, purpose: 'account' });
    expect(ok.statusCode).toBe(200);
  });

  it('an address envelope moved to another address of the same customer (same data key) fails', async () => {
    const s = await seed(t, auth);
    const second = await call(t, { method: 'POST', url: `/v1/customers/${s.id}/addresses`, auth, payload: { ...s.p.address, line1: 'Zweitwohnsitz 5' } });
    expect(second.statusCode).toBe(201);
    const otherId = second.json<{ id: string }>().id;
    await store(otherId, await load(s.addressId));
    await expectIntegrityFailure(`/v1/customers/${s.id}`, 'fulfilment', [...personalStrings(s.p), 'Zweitwohnsitz 5']);
  });

  it("one order's envelope moved into another order of the same customer fails", async () => {
    const s = await seed(t, auth);
    const otherId = await newOrder(s.id, { ...s.p.order, number: 'SO-other', shipping_address: { ...s.p.order.shipping_address, line1: 'Packstation 123' } });
    // The envelope alone moves: the plain order number stays (one number per customer is a unique index).
    const moved = await load(s.orderId);
    const target = await load(otherId);
    await store(otherId, { ...moved, p: target.p } as Stored);
    await expectIntegrityFailure(`/v1/orders/${otherId}`, 'fulfilment', [...personalStrings(s.p), 'Packstation 123']);
    await expectIntegrityFailure(`/v1/customers/${s.id}/orders`, 'fulfilment', [...personalStrings(s.p), 'Packstation 123']);
  });

  it('an envelope moved from a customer row into an order row (another collection) fails', async () => {
    const s = await seed(t, auth);
    const customer = await load(s.id);
    const order = await load(s.orderId);
    await store(s.orderId, { ...order, s: customer.s, n: customer.n });
    await expectIntegrityFailure(`/v1/orders/${s.orderId}`, 'account', [...personalStrings(s.p), '1984-03-07']);
  });

  it("an address re-assigned to another customer (subject_id edited) fails", async () => {
    const a = await seed(t, auth);
    const b = await seed(t, auth);
    await setColumns(a.addressId, { subject_id: b.id });
    await expectIntegrityFailure(`/v1/customers/${b.id}`, 'fulfilment', [...personalStrings(a.p), ...personalStrings(b.p)]);
  });

  it('a protected field removed from a record (email dropped) fails instead of reading without it', async () => {
    const s = await seed(t, auth);
    const data = await load(s.id);
    data.n = data.n.filter((n) => n !== 'email');
    await store(s.id, data);
    await expectIntegrityFailure(`/v1/customers/${s.id}`, 'account', personalStrings(s.p));
  });

  it('a field added to a record (a name listed that was never sealed) fails', async () => {
    const s = await seed(t, auth);
    const address = await load(s.addressId);
    const customer = await load(s.id);
    customer.n = [...customer.n, 'line1'].sort();
    await store(s.id, customer);
    await expectIntegrityFailure(`/v1/customers/${s.id}`, 'fulfilment', personalStrings(s.p));
    expect(address.n).toContain('line1');
  });

  it('fields swapped inside a record (the protected names reordered) fail', async () => {
    const s = await seed(t, auth);
    const data = await load(s.id);
    const [first, second, ...rest] = data.n;
    data.n = [second!, first!, ...rest];
    await store(s.id, data);
    await expectIntegrityFailure(`/v1/customers/${s.id}`, 'account', personalStrings(s.p));
  });

  it("a plain field changed in the database (an order's status paid → refunded) fails", async () => {
    const s = await seed(t, auth);
    const data = await load(s.orderId);
    expect(data.p.status).toBe('paid');
    data.p.status = 'refunded';
    await store(s.orderId, data);
    await expectIntegrityFailure(`/v1/orders/${s.orderId}`, 'fulfilment', personalStrings(s.p));
  });

  it('a plain field removed or added fails', async () => {
    const s = await seed(t, auth);
    const data = await load(s.orderId);
    delete data.p.status;
    await store(s.orderId, data);
    await expectIntegrityFailure(`/v1/orders/${s.orderId}`, 'fulfilment', personalStrings(s.p));
    const other = await seed(t, auth);
    const more = await load(other.orderId);
    more.p.currency_note = 'x';
    await store(other.orderId, more);
    await expectIntegrityFailure(`/v1/orders/${other.orderId}`, 'fulfilment', personalStrings(other.p));
  });

  it('the record version edited (to pass an older envelope as current) fails', async () => {
    const s = await seed(t, auth);
    await setColumns(s.id, { version: 2 });
    await expectIntegrityFailure(`/v1/customers/${s.id}`, 'account', personalStrings(s.p));
  });

  it('a flipped bit or a changed key version in an envelope fails', async () => {
    const s = await seed(t, auth);
    const data = await load(s.id);
    const [tag, version, body] = data.s.split('.') as [string, string, string];
    const bytes = Buffer.from(body, 'base64url');
    bytes[bytes.length - 20]! ^= 0x01;
    await store(s.id, { ...data, s: `${tag}.${version}.${bytes.toString('base64url')}` });
    await expectIntegrityFailure(`/v1/customers/${s.id}`, 'support', personalStrings(s.p));
    const fresh = await seed(t, auth);
    const good = await load(fresh.id);
    good.s = good.s.replace(/^r1\.(\d+)\./, (_m, v: string) => `r1.${Number(v) + 1}.`);
    await store(fresh.id, good);
    await expectIntegrityFailure(`/v1/customers/${fresh.id}`, 'account', personalStrings(fresh.p));
  });

  it('an update reads the whole record and seals the next record version', async () => {
    const s = await seed(t, auth);
    const patched = await call(t, { method: 'PATCH', url: `/v1/customers/${s.id}`, auth, purpose: 'account', payload: { name: 'Neuer Name' } });
    expect(patched.statusCode, patched.body).toBe(200);
    const row = await t.runtime.store.db.selectFrom('records').select(['version']).where('id', '=', s.id).executeTakeFirstOrThrow();
    expect(row.version).toBe(2);
    const read = await call(t, { url: `/v1/customers/${s.id}`, auth, purpose: 'account' });
    expect(read.json<{ name: string; email: string }>()).toMatchObject({ name: 'Neuer Name', email: s.p.customer.email });
  });
});

/**
 * A key rotation run by another process adds a KEK version while the server runs. A customer
 * created afterwards must get its data key under the new KEK, even where the server remembers
 * the current version between writes (PostgreSQL): its write is refused by the database and
 * made again under the new version, so the rotation never leaves new keys behind.
 */
describe('new data keys follow a KEK added by another process', () => {
  let t: TestApp;
  let auth: string;
  beforeAll(async () => {
    t = await testApp();
    auth = (await apiKey(t, ALL_PURPOSES)).auth;
  });
  afterAll(async () => t.close());

  const kekOf = async (id: string) =>
    (await t.runtime.store.db.selectFrom('subject_keys').select('kek_version').where('subject_id', '=', id).executeTakeFirstOrThrow()).kek_version;

  it('a customer created after the rotation added v2 is wrapped under v2, and reads back', async () => {
    const first = await seed(t, auth, person('before-rotation'));
    expect(await kekOf(first.id)).toBe(1);
    const other = await openRuntime(loadConfig(t.env), { background: false, logger: createLogger('silent') });
    try {
      expect(await other.keys.addKekVersion()).toBe(2);
    } finally {
      await other.close();
    }
    const p = person('after-rotation');
    const second = await seed(t, auth, p);
    expect(await kekOf(second.id)).toBe(2);
    const read = await call(t, { url: `/v1/customers/${second.id}`, auth, purpose: 'account' });
    expect(read.statusCode, read.body).toBe(200);
    expect(read.json<{ name: string }>().name).toBe(p.customer.name);
  });
});
