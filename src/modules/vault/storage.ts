import type { Kysely, Selectable } from 'kysely';
import type { Dek } from '../../crypto/key-store.ts';
import type { Database } from '../../store/schema.ts';
import type { AuditEntry } from '../audit/service.ts';

/**
 * What the vault service asks of its database: each write as one atomic unit (the record, its
 * blind indexes and its audit entry commit together or not at all), and the re-seal's
 * compare-and-swap. One implementation per dialect (storage-sqlite.ts, storage-postgres.ts), each
 * with one path per write: a failure is the caller's error, never retried another way.
 */
export type Row = Selectable<Database['records']>;
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
  /** The record's new `data`, from the current row, sealed under `dek` as `version`. */
  rewrite(row: Row, dek: Dek, version: number): string;
  readonly entry: AuditEntry;
}

export interface VaultStorage {
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

/** The storage's reads and marks that are the same statement on both dialects. */
export function commonQueries(db: Kysely<Database>): Pick<VaultStorage, 'scan' | 'legacyLeft' | 'resealed' | 'markResealed'> {
  return {
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
