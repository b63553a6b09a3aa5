import { sql, type Kysely, type Selectable } from 'kysely';
import type { Dialect, Store } from '../../store/database.ts';
import { KEY_GENERATION_COLUMN, type Dek, type KeyStore } from '../../crypto/key-store.ts';
import { parseStored, sealedUnder } from './codec.ts';
import type { Database } from '../../store/schema.ts';
import type { AuditEntry } from '../audit/service.ts';
import { withRestriction } from '../rights/restriction-column.ts';

/**
 * What the vault service asks of its database: each write as one atomic unit (the record, its
 * blind indexes and its audit entry commit together or not at all), and the re-seal's
 * compare-and-swap. One implementation per dialect (storage-sqlite.ts, storage-postgres.ts), each
 * with one path per write: a failure is the caller's error, never retried another way.
 */
export type Row = Selectable<Database['records']> & {
  /** SQLite: the key generation of the snapshot the row was read in (KEY_GENERATION_COLUMN), for the key store's cache check. */
  readonly key_generation?: number;
  /** The subject's restriction in force when the row was read (withRestriction): read by the hot-path statements only. */
  readonly restriction?: string | null;
};
export type IndexRow = Database['blind_indexes'];

export interface NewRecord {
  readonly id: string;
  readonly collection: string;
  /** The customer the record belongs to (a customer record: its own id). */
  readonly subjectId: string;
  /** An address or order: the customer it is created under, who must exist. */
  readonly parentId: string | undefined;
  readonly at: string;
  readonly indexes: readonly IndexRow[];
  /** The blind-index state the indexes were computed at: with indexes, the write stores nothing unless it still holds (BlindIndexMoved). */
  readonly indexState?: number | undefined;
  /** The record's `data`, sealed under `dek` as record version 1. */
  seal(dek: Dek): string;
  /** The write's audit entry (its record version is set by the storage). */
  readonly entry: AuditEntry;
}

export interface RecordUpdate {
  readonly id: string;
  readonly collection: string;
  readonly at: string;
  /** New blind-index rows, and the searchable fields whose rows they replace. */
  readonly indexes: readonly IndexRow[];
  readonly replaced: readonly string[];
  /** As NewRecord.indexState. */
  readonly indexState?: number | undefined;
  /**
   * The record's new `data`, from the current row (opened with `keyOf` its data-key version),
   * sealed under `dek`, the subject's current data key, as `version`.
   */
  rewrite(row: Row, keyOf: KeyOf, dek: Dek, version: number): string;
  readonly entry: AuditEntry;
}

/** The keys of a subject by data-key version, as loaded for one write. */
export type KeyOf = (version: number) => Dek | undefined;

/**
 * The keys an update needs: the subject's current data key (to seal under) and the one the
 * stored record names (to open it), loaded before the write's synchronous part.
 */
export async function updateKeys(keys: KeyStore, via: Kysely<Database>, subjectId: string, data: string): Promise<{ dek: Dek; keyOf: KeyOf } | undefined> {
  const dek = await keys.dekFor(via, subjectId, false);
  if (dek === undefined) return undefined;
  const sealed = sealedUnder(parseStored(data));
  const old = sealed === undefined || sealed === dek.version ? dek : await keys.dekVersion(via, subjectId, sealed);
  return { dek, keyOf: (version) => (version === dek.version ? dek : version === old?.version ? old : undefined) };
}

export interface VaultStorage {
  /**
   * A customer's record and their addresses, unordered. These four reads also carry each row's
   * subject's restriction in force at `now` (an ISO time), for the policy (`restriction`).
   */
  customerRows(customerId: string, now: string): Promise<Row[]>;
  /** The customers (with their addresses) whose blind index of `field` is one of `digests` (one per key version in force), unordered. */
  lookupRows(field: string, digests: readonly string[], now: string): Promise<Row[]>;
  orderRow(id: string, now: string): Promise<Row | undefined>;
  recordRow(id: string, now: string): Promise<Row | undefined>;
  customerExists(id: string): Promise<boolean>;
  /** A customer's orders, newest first, before the `before` id. */
  orderRows(customerId: string, before: string | undefined, limit: number): Promise<Row[]>;
  /** A customer's records of one collection after `after` (by id), up to `limit`, by id (an export page). */
  exportRows(customerId: string, collection: string, after: string, limit: number): Promise<Row[]>;
  /** Each record's id and version, by id. */
  versions(after: string, limit: number): Promise<{ id: string; version: number }[]>;
  /** Inserts a record (and, for a new customer, their data key); VAULT_NOT_FOUND when the parent is missing. */
  create(record: NewRecord): Promise<void>;
  /** Rewrites a record as the next record version; VAULT_NOT_FOUND when it does not exist. */
  update(change: RecordUpdate): Promise<void>;
  /**
   * Replaces a record's `data` if its version is still `version` (compare-and-swap): a write that
   * landed since the re-seal read the row wins, and the re-seal reads it again. The record version
   * is left as is: the content is the same, only its sealing changed.
   */
  reseal(id: string, version: number, data: string): Promise<boolean>;
  /** Up to `limit` records after `after` (by id), for the re-seal job. */
  scan(after: string, limit: number): Promise<Row[]>;
  /** Whether records in the per-field format remain. */
  legacyLeft(): Promise<boolean>;
  /** Whether the store was marked re-sealed (the per-field format refused), and the mark. */
  resealed(): Promise<boolean>;
  markResealed(): Promise<void>;
}

/** The first characters of `data` in the envelope format (codec.ts writes `s` first). */
export const ENVELOPE_PREFIX = '{"s":';

/** Most records one lookup returns (customers sharing a value, with their addresses). */
const LOOKUP_LIMIT = 1000;

/**
 * The storage's reads and marks: the same statements on both dialects. The reads of the hot path
 * are built and compiled once (Kysely would build them per call) and run through Store.read. They
 * leave the order to the caller: on SQLite an ORDER BY over the IN list costs a temporary B-tree,
 * three times the cost of the lookup itself, for a handful of rows sorted by the service instead.
 * On SQLite each row also carries the key generation of its snapshot (`key_generation`), which the
 * service hands to the key store with the rows it opens: one statement per read instead of two.
 * Each row also carries its subject's restriction in force (withRestriction), which the policy
 * decides on: no statement of its own per read (two per customer read, with addresses, before).
 */
export function commonQueries(db: Kysely<Database>, read: Store['read'], dialect: Dialect): Omit<VaultStorage, 'create' | 'update' | 'reseal'> {
  // The restriction's `now` is the first parameter of each statement below (the select list comes first).
  const records = () => {
    const q = withRestriction(db, db.selectFrom('records').selectAll(), '');
    return dialect === 'sqlite' ? q.select(sql<number>`${sql.raw(KEY_GENERATION_COLUMN)}`.as('key_generation')) : q;
  };
  const CUSTOMER_ROWS = records().where('subject_id', '=', '').where('collection', 'in', ['customers', 'addresses']).compile().sql;
  // An IN subquery rather than a join: measured on SQLite, a third of the join's time.
  // Over n digests: one while no blind-index rebuild runs, two during one (src/crypto/blind-index.ts).
  const lookupSql = (n: number) => records()
    .where('subject_id', 'in', (eb) =>
      eb.selectFrom('blind_indexes').select('record_id').where('collection', '=', 'customers').where('field', '=', '').where('digest', n === 1 ? '=' : 'in', n === 1 ? '' : Array<string>(n).fill('')),
    )
    .where('collection', 'in', ['customers', 'addresses'])
    // A literal: a bound LIMIT made SQLite's statement two to four times slower.
    .limit(sql.lit(LOOKUP_LIMIT))
    .compile().sql;
  const LOOKUP_ROWS = [lookupSql(1), lookupSql(2)];
  const ORDER_ROW = records().where('id', '=', '').where('collection', '=', 'orders').compile().sql;
  const RECORD_ROW = records().where('id', '=', '').compile().sql;
  return {
    customerRows: (customerId, now) => read<Row>(CUSTOMER_ROWS, [now, customerId, 'customers', 'addresses']),
    lookupRows: (field, digests, now) => read<Row>(LOOKUP_ROWS[digests.length - 1] ?? lookupSql(digests.length), [now, 'customers', field, ...digests, 'customers', 'addresses']),
    orderRow: async (id, now) => (await read<Row>(ORDER_ROW, [now, id, 'orders']))[0],
    recordRow: async (id, now) => (await read<Row>(RECORD_ROW, [now, id]))[0],
    async customerExists(id) {
      const row = await db.selectFrom('records').select('id').where('id', '=', id).where('collection', '=', 'customers').executeTakeFirst();
      return row !== undefined;
    },
    orderRows(customerId, before, limit) {
      let q = db.selectFrom('records').selectAll().where('subject_id', '=', customerId).where('collection', '=', 'orders');
      if (before !== undefined) q = q.where('id', '<', before);
      return q.orderBy('id', 'desc').limit(limit).execute();
    },
    // With the key generation (SQLite): the export opens thousands of a subject's records, each would read it otherwise.
    exportRows: (customerId, collection, after, limit) => {
      const q = db.selectFrom('records').selectAll().where('subject_id', '=', customerId).where('collection', '=', collection).where('id', '>', after).orderBy('id').limit(limit);
      return (dialect === 'sqlite' ? q.select(sql<number>`${sql.raw(KEY_GENERATION_COLUMN)}`.as('key_generation')) : q).execute();
    },
    versions: (after, limit) => db.selectFrom('records').select(['id', 'version']).where('id', '>', after).orderBy('id').limit(limit).execute(),
    scan: (after, limit) => db.selectFrom('records').selectAll().where('id', '>', after).orderBy('id').limit(limit).execute(),
    async legacyLeft() {
      const row = await db.selectFrom('records').select('id').where('data', 'not like', `${ENVELOPE_PREFIX}%`).limit(1).executeTakeFirst();
      return row !== undefined;
    },
    async resealed() {
      const row = await db.selectFrom('vault_state').select('value').where('name', '=', 'resealed').executeTakeFirst();
      return Number(row?.value ?? 0) === 1;
    },
    async markResealed() {
      await db
        .insertInto('vault_state')
        .values({ name: 'resealed', value: 1 })
        .onConflict((oc) => oc.column('name').doUpdateSet({ value: 1 }))
        .execute();
    },
  };
}
