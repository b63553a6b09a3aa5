import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { createLogger } from '../../src/kernel/logger.ts';
import { openRuntime } from '../../src/runtime.ts';
import { testApp, type TestApp } from '../support/app.ts';
import { ALL_PURPOSES, apiKey, call, expectError, expectNoValues, person, personalStrings, seed } from './helpers.ts';

/**
 * Crypto binding through the store. Attack: someone with write access to the database (but not
 * the keys) moves ciphertexts around in `records.data` — another customer's email into this
 * customer's row, one field's ciphertext into another field of the same row, one order's address
 * into another order of the same customer (same data key) — hoping a read releases the moved
 * value under the wrong name. Each field's AES-GCM associated data names collection, field,
 * record and key version, so every such read must fail with 500 VAULT_INTEGRITY_FAILURE and
 * release nothing (DESIGN.md, Keys; OWASP ASVS 5.0 11.3.x authenticated encryption).
 */
interface Stored {
  e: Record<string, string>;
  p: Record<string, unknown>;
}

describe('vault ciphertexts are bound to their row and field', () => {
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

  /** Expects the read to refuse with VAULT_INTEGRITY_FAILURE and to carry none of `values`. */
  async function expectIntegrityFailure(url: string, purpose: string, values: string[]) {
    const res = await call(t, { url, auth, purpose });
    const body = expectError(res, 500, 'VAULT_INTEGRITY_FAILURE');
    expect(Object.keys(body.error).sort()).toEqual(['code', 'message', 'request_id']);
    expectNoValues(res, values);
  }

  it('stores protected fields as f1 ciphertexts, never in clear', async () => {
    const s = await seed(t, auth);
    const data = await load(s.id);
    expect(Object.keys(data.e).sort()).toEqual(['date_of_birth', 'email', 'locale', 'name', 'phone']);
    for (const v of Object.values(data.e)) expect(v).toMatch(/^f1\.\d+\.[A-Za-z0-9_-]+$/);
    const raw = JSON.stringify(data) + JSON.stringify(await load(s.addressId)) + JSON.stringify(await load(s.orderId));
    expectNoValues(raw, personalStrings(s.p));
  });

  it("another customer's email ciphertext copied into this customer's row fails to open", async () => {
    const a = await seed(t, auth);
    const b = await seed(t, auth);
    const da = await load(a.id);
    const db = await load(b.id);
    db.e.email = da.e.email!;
    await store(b.id, db);
    await expectIntegrityFailure(`/v1/customers/${b.id}`, 'account', [...personalStrings(a.p), ...personalStrings(b.p)]);
    // The victim row still reads fine: only the tampered row is refused.
    const ok = await call(t, { url: `/v1/customers/${a.id}`, auth, purpose: 'account' });
    expect(ok.statusCode).toBe(200);
  });

  it('the same ciphertext moved between fields of one row (name → email) fails to open', async () => {
    const s = await seed(t, auth);
    const data = await load(s.id);
    data.e.email = data.e.name!;
    await store(s.id, data);
    await expectIntegrityFailure(`/v1/customers/${s.id}`, 'fulfilment', personalStrings(s.p));
    await expectIntegrityFailure(`/v1/customers?phone=${encodeURIComponent(s.p.customer.phone)}`, 'account', personalStrings(s.p));
  });

  it("an address ciphertext moved to another address of the same customer (same data key) fails", async () => {
    const s = await seed(t, auth);
    const second = await call(t, { method: 'POST', url: `/v1/customers/${s.id}/addresses`, auth, payload: { ...s.p.address, line1: 'Zweitwohnsitz 5' } });
    expect(second.statusCode).toBe(201);
    const otherId = second.json<{ id: string }>().id;
    const from = await load(s.addressId);
    const to = await load(otherId);
    to.e.line1 = from.e.line1!;
    await store(otherId, to);
    await expectIntegrityFailure(`/v1/customers/${s.id}`, 'fulfilment', [...personalStrings(s.p), 'Zweitwohnsitz 5']);
  });

  it("one order's shipping address moved into another order of the same customer fails", async () => {
    const s = await seed(t, auth);
    const other = await call(t, {
      method: 'POST',
      url: `/v1/customers/${s.id}/orders`,
      auth,
      payload: { ...s.p.order, number: 'SO-other', shipping_address: { ...s.p.order.shipping_address, line1: 'Packstation 123' } },
    });
    expect(other.statusCode).toBe(201);
    const otherId = other.json<{ id: string }>().id;
    const from = await load(s.orderId);
    const to = await load(otherId);
    to.e.shipping_address = from.e.shipping_address!;
    await store(otherId, to);
    await expectIntegrityFailure(`/v1/orders/${otherId}`, 'fulfilment', [...personalStrings(s.p), 'Packstation 123']);
    await expectIntegrityFailure(`/v1/customers/${s.id}/orders`, 'fulfilment', [...personalStrings(s.p), 'Packstation 123']);
  });

  it('a ciphertext moved from a customer row into an order row fails', async () => {
    const s = await seed(t, auth);
    const customer = await load(s.id);
    const order = await load(s.orderId);
    order.e.placed_at = customer.e.date_of_birth!;
    await store(s.orderId, order);
    await expectIntegrityFailure(`/v1/orders/${s.orderId}`, 'account', [...personalStrings(s.p), '1984-03-07']);
  });

  it('a flipped bit or a changed key version in a ciphertext fails', async () => {
    const s = await seed(t, auth);
    const data = await load(s.id);
    const [tag, version, body] = data.e.name!.split('.') as [string, string, string];
    const bytes = Buffer.from(body, 'base64url');
    bytes[bytes.length - 20]! ^= 0x01;
    data.e.name = `${tag}.${version}.${bytes.toString('base64url')}`;
    await store(s.id, data);
    await expectIntegrityFailure(`/v1/customers/${s.id}`, 'support', personalStrings(s.p));
    const fresh = await seed(t, auth);
    const good = await load(fresh.id);
    good.e.email = good.e.email!.replace(/^f1\.(\d+)\./, (_m, v: string) => `f1.${Number(v) + 1}.`);
    await store(fresh.id, good);
    await expectIntegrityFailure(`/v1/customers/${fresh.id}`, 'account', personalStrings(fresh.p));
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
