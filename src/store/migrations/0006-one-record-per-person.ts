import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Dialect } from '../database.ts';

/**
 * One person, one record.
 *
 * - `identity_claims`: the links a shop sends a stored customer to claim their account (only a
 *   keyed hash of the secret is kept).
 * - Sign-up stubs are resolved. The old sign-up made a vault customer holding nothing but the email
 *   for every new account, verified or not. A stub (a customer record whose only field is `email`,
 *   with no addresses or orders, linked to a customer account) whose email the shop also stored in
 *   exactly one other record is merged into that record: a verified account is re-linked to the
 *   shop's record, an unverified one is unlinked (it links at verification). Every other stub of an
 *   unverified account is removed too, so that an address nobody proved cannot hold the email.
 *   A removed stub is crypto-shredded (its data key deleted) and its rows deleted.
 * - An email belongs to at most one customer record: a unique index on the email blind index.
 *   Duplicates this database already held and that are not one person's stub stay findable; all
 *   but the oldest record of each such email are left out of the index by id (they are counted in
 *   the report), so the shop can resolve them and no new duplicate can be made.
 * - An order `number` is unique per customer, where the number is stored plain (the default
 *   inventory): a unique index over customer and number; older duplicates are left out the same way.
 *
 * The report goes to the log as counts only: no id, no email digest, nothing personal.
 */
export type OneRecordReport = {
  /** Emails stored in more than one customer record before this migration. */
  duplicate_emails: number;
  /** Sign-up stubs merged into the shop's record of the same email. */
  stubs_merged: number;
  /** Stubs of unverified accounts removed (the account links when its email is verified). */
  unverified_stubs_removed: number;
  /** Emails still held by more than one record after merging: the shop resolves them. */
  duplicate_emails_unresolved: number;
  /** (customer, order number) pairs held by more than one order. */
  duplicate_order_numbers: number;
};

interface StubCandidate {
  id: string;
  data: string;
  account_id: string;
  email_verified_at: string | null;
}

/** True when the stored data holds the email and nothing else (what the old sign-up wrote). */
function onlyEmail(json: string): boolean {
  try {
    // Per-field records name their sealed fields in `e`; whole-record envelopes (migration 0012) in `n`.
    const parsed = JSON.parse(json) as { e?: Record<string, unknown>; n?: unknown; p?: Record<string, unknown> };
    const e = Array.isArray(parsed.n) ? parsed.n.map(String) : Object.keys(parsed.e ?? {});
    return e.length === 1 && e[0] === 'email' && Object.keys(parsed.p ?? {}).length === 0;
  } catch {
    return false;
  }
}

/** ` AND column NOT IN ('a', 'b')`, literals (DDL takes no bound parameters on PostgreSQL); empty when there are none. */
function exceptIds(column: string, ids: readonly string[]): RawBuilder<unknown> {
  if (ids.length === 0) return sql``;
  return sql` AND ${sql.ref(column)} NOT IN (${sql.join(ids.map((v) => sql.lit(v)))})`;
}

async function removeRecord(db: Kysely<unknown>, id: string): Promise<void> {
  await sql`DELETE FROM blind_indexes WHERE record_id = ${id}`.execute(db);
  await sql`DELETE FROM records WHERE id = ${id}`.execute(db);
  await sql`DELETE FROM subject_keys WHERE subject_id = ${id}`.execute(db);
}

/** Email digest → customer record ids holding it, for digests held by more than one record. */
async function emailGroups(db: Kysely<unknown>): Promise<Map<string, string[]>> {
  const rows = await sql<{ digest: string; record_id: string }>`
    SELECT digest, record_id FROM blind_indexes
    WHERE collection = 'customers' AND field = 'email' AND digest IN (
      SELECT digest FROM blind_indexes WHERE collection = 'customers' AND field = 'email' GROUP BY digest HAVING COUNT(*) > 1)
    ORDER BY digest, record_id`.execute(db);
  const groups = new Map<string, string[]>();
  for (const r of rows.rows) groups.set(r.digest, [...(groups.get(r.digest) ?? []), r.record_id]);
  return groups;
}

export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<OneRecordReport> {
  await db.schema
    .createTable('identity_claims')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('email_sealed', 'text', (c) => c.notNull())
    .addColumn('secret_hash', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('used_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('identity_claims_customer').on('identity_claims').columns(['customer_id']).execute();

  const candidates = await sql<StubCandidate>`
    SELECT r.id AS id, r.data AS data, a.id AS account_id, a.email_verified_at AS email_verified_at
    FROM records r JOIN identity_accounts a ON a.customer_id = r.id AND a.realm = 'customer'
    WHERE r.collection = 'customers'
      AND NOT EXISTS (SELECT 1 FROM records c WHERE c.subject_id = r.id AND c.id <> r.id)`.execute(db);
  const stubs = new Map(candidates.rows.filter((c) => onlyEmail(c.data)).map((c) => [c.id, c]));

  const before = await emailGroups(db);
  let merged = 0;
  const handled = new Set<string>();
  for (const ids of before.values()) {
    const own = ids.filter((id) => stubs.has(id));
    const shop = ids.filter((id) => !stubs.has(id));
    if (own.length === 0 || shop.length !== 1) continue;
    for (const id of own) {
      const stub = stubs.get(id)!;
      const target = stub.email_verified_at === null ? null : shop[0]!;
      await sql`UPDATE identity_accounts SET customer_id = ${target} WHERE id = ${stub.account_id}`.execute(db);
      await removeRecord(db, id);
      handled.add(id);
      merged++;
    }
  }
  let removed = 0;
  for (const stub of stubs.values()) {
    if (handled.has(stub.id) || stub.email_verified_at !== null) continue;
    await sql`UPDATE identity_accounts SET customer_id = NULL WHERE id = ${stub.account_id}`.execute(db);
    await removeRecord(db, stub.id);
    removed++;
  }

  const after = await emailGroups(db);
  const legacyEmails = [...after.values()].flatMap((ids) => ids.slice(1));
  await sql`CREATE UNIQUE INDEX blind_indexes_customer_email ON blind_indexes (digest)
    WHERE collection = 'customers' AND field = 'email'${exceptIds('record_id', legacyEmails)}`.execute(db);

  const number = dialect === 'postgres' ? sql`((data::jsonb) #>> '{p,number}')` : sql`json_extract(data, '$.p.number')`;
  const orders = await sql<{ id: string; subject_id: string; number: string }>`
    SELECT id, subject_id, ${number} AS number FROM records o
    WHERE collection = 'orders' AND ${number} IS NOT NULL AND EXISTS (
      SELECT 1 FROM records d WHERE d.collection = 'orders' AND d.subject_id = o.subject_id AND d.id <> o.id
        AND ${dialect === 'postgres' ? sql`((d.data::jsonb) #>> '{p,number}')` : sql`json_extract(d.data, '$.p.number')`} = ${number})
    ORDER BY subject_id, number, id`.execute(db);
  const legacyOrders: string[] = [];
  let orderGroups = 0;
  let previous = '';
  for (const o of orders.rows) {
    const key = `${o.subject_id}\u0000${o.number}`;
    if (key === previous) legacyOrders.push(o.id);
    else orderGroups++;
    previous = key;
  }
  await sql`CREATE UNIQUE INDEX records_order_number ON records (subject_id, ${number})
    WHERE collection = 'orders'${exceptIds('id', legacyOrders)}`.execute(db);

  return {
    duplicate_emails: before.size,
    stubs_merged: merged,
    unverified_stubs_removed: removed,
    duplicate_emails_unresolved: after.size,
    duplicate_order_numbers: orderGroups,
  };
}
