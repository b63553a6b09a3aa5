import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Secret } from '../../src/kernel/secret.ts';
import { migrate, openStore, type MigrationReport } from '../../src/store/database.ts';
import { testDatabase } from '../support/store.ts';
import { authApp, browser, codeOf, signIn, STRONG, uniqueEmail, type AuthTest } from './helpers.ts';

/**
 * Migration 0006 on a database that already holds what the old code wrote: a sign-up stub (a
 * customer holding only the email, linked to an account) beside the shop's record of the same
 * person, the stub of an account never verified, two shop records sharing one email, and one
 * order number recorded twice. The old state is built by hand: the migration's indexes dropped,
 * the rows written as the old sign-up wrote them, then the migration run again.
 */
let t: AuthTest;
let shop: string;
beforeAll(async () => {
  t = await authApp();
  shop = await t.bearer(['account', 'fulfilment']);
});
afterAll(async () => t.close());

const api = (method: 'POST' | 'PATCH' | 'GET', url: string, payload?: Record<string, unknown>) =>
  t.app.inject({ method, url, headers: { authorization: shop, 'custos-purpose': 'account' }, ...(payload === undefined ? {} : { payload }) });
const count = async (query: ReturnType<typeof sql<{ n: number | string }>>) => Number((await query.execute(t.runtime.store.db)).rows[0]!.n);
const order = (number: string) => ({ number, placed_at: '2026-01-05T10:00:00Z', currency: 'EUR', total: '10.00', status: 'paid' });

/** What the old sign-up did: an account, and a vault customer holding just its email, linked. */
async function oldSignUp(email: string, verified: boolean): Promise<{ accountId: string; stubId: string }> {
  const { identity, vault } = t.runtime;
  const { account } = await identity.accounts.create({ realm: 'customer', email, password: new Secret(STRONG) });
  const actor = { ref: `account:${account.id}`, kind: 'system' as const, purposes: ['account'] };
  const { id } = await vault.create({ actor, purpose: 'account', requestId: 'old-signup' }, 'customers', undefined, { email });
  await identity.accounts.linkCustomer(account.id, id);
  if (verified) await identity.accounts.markEmailVerified(account.id);
  return { accountId: account.id, stubId: id };
}

describe('migration 0006: duplicates an existing database holds', () => {
  it('is safe on an empty database and reports zeros', async () => {
    const db = testDatabase();
    const store = await openStore(db.database);
    try {
      const reports: [string, MigrationReport][] = [];
      await migrate(store, (name, report) => reports.push([name, report]));
      expect(reports).toEqual([
        ['0006-one-record-per-person', { duplicate_emails: 0, stubs_merged: 0, unverified_stubs_removed: 0, duplicate_emails_unresolved: 0, duplicate_order_numbers: 0 }],
      ]);
    } finally {
      await store.close();
      await db.cleanup();
    }
  });

  it('merges a verified sign-up stub into the shop’s record, removes unverified stubs, keeps and fences real duplicates', async () => {
    const db = t.runtime.store.db;
    await sql`DROP INDEX blind_indexes_customer_email`.execute(db);
    await sql`DROP INDEX records_order_number`.execute(db);
    await sql`DROP TABLE identity_claims`.execute(db);
    await sql`DELETE FROM custos_migrations WHERE name = '0006-one-record-per-person'`.execute(db);

    // 1. The shop's record of Ines (with an order), and her old sign-up's stub, verified.
    const ines = uniqueEmail('ines');
    const shopId = (await api('POST', '/v1/customers', { email: ines, name: 'Ines Varga-Holm' })).json<{ id: string }>().id;
    expect((await api('POST', `/v1/customers/${shopId}/orders`, order('SO-1'))).statusCode).toBe(201);
    const merged = await oldSignUp(ines, true);
    // 2. A stub of an account never verified (no shop record), and one beside a shop record.
    const squat = await oldSignUp(uniqueEmail('squat'), false);
    const bea = uniqueEmail('bea');
    const beaShop = (await api('POST', '/v1/customers', { email: bea, name: 'Bea' })).json<{ id: string }>().id;
    const beaStub = await oldSignUp(bea, false);
    // 3. Two shop records sharing one email: not one person's stub, left for the shop.
    const twin = uniqueEmail('twin');
    const twinA = (await api('POST', '/v1/customers', { email: twin, name: 'Twin A' })).json<{ id: string }>().id;
    const twinB = (await api('POST', '/v1/customers', { email: twin, name: 'Twin B' })).json<{ id: string }>().id;
    // 4. One order number recorded twice for one customer.
    expect((await api('POST', `/v1/customers/${twinA}/orders`, order('SO-9'))).statusCode).toBe(201);
    expect((await api('POST', `/v1/customers/${twinA}/orders`, order('SO-9'))).statusCode).toBe(201);

    const reports: [string, MigrationReport][] = [];
    expect(await migrate(t.runtime.store, (name, report) => reports.push([name, report]))).toEqual(['0006-one-record-per-person']);
    expect(reports).toEqual([
      ['0006-one-record-per-person', { duplicate_emails: 3, stubs_merged: 2, unverified_stubs_removed: 1, duplicate_emails_unresolved: 1, duplicate_order_numbers: 1 }],
    ]);
    // The report holds counts only.
    expect(JSON.stringify(reports)).not.toMatch(/cus_|acc_|@/);

    // The stubs are gone, their data keys with them (crypto-shredded).
    for (const id of [merged.stubId, squat.stubId, beaStub.stubId]) {
      expect(await count(sql`SELECT count(*) AS n FROM records WHERE id = ${id}`)).toBe(0);
      expect(await count(sql`SELECT count(*) AS n FROM subject_keys WHERE subject_id = ${id}`)).toBe(0);
      expect(await count(sql`SELECT count(*) AS n FROM blind_indexes WHERE record_id = ${id}`)).toBe(0);
    }
    expect((await t.runtime.identity.accounts.get(squat.accountId)).customer_id).toBeNull();
    expect((await t.runtime.identity.accounts.get(beaStub.accountId)).customer_id).toBeNull();

    // Ines signs in and sees the shop's record and order.
    const { jar } = await signIn(t, ines);
    expect((await browser(t, jar, 'GET', '/v1/me')).json()).toMatchObject({ id: shopId, name: 'Ines Varga-Holm' });
    expect((await browser(t, jar, 'GET', '/v1/me/orders')).json<{ data: unknown[] }>().data).toHaveLength(1);
    // Bea's unverified account reaches nothing until verified.
    const { jar: beaJar } = await signIn(t, bea);
    expect(codeOf(await browser(t, beaJar, 'GET', '/v1/me'))).toBe('IDENTITY_EMAIL_UNVERIFIED');
    expect(beaShop).toMatch(/^cus_/);

    // The twins stay findable; no third record of that email, nor a third SO-9, can be made.
    expect((await api('GET', `/v1/customers?email=${encodeURIComponent(twin)}`)).json<{ data: { id: string }[] }>().data.map((c) => c.id).sort()).toEqual(
      [twinA, twinB].sort(),
    );
    expect(codeOf(await api('POST', '/v1/customers', { email: twin }))).toBe('VAULT_EMAIL_TAKEN');
    expect(codeOf(await api('PATCH', `/v1/customers/${beaShop}`, { email: ines }))).toBe('VAULT_EMAIL_TAKEN');
    expect(codeOf(await api('POST', `/v1/customers/${twinA}/orders`, order('SO-9')))).toBe('VAULT_ORDER_NUMBER_TAKEN');
    expect((await api('POST', `/v1/customers/${twinB}/orders`, order('SO-9'))).statusCode).toBe(201);
  });
});
