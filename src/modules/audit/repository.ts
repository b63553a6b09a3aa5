import { CompiledQuery, sql, type Kysely, type Selectable } from 'kysely';
import type { Dialect } from '../../store/database.ts';
import type { Database } from '../../store/schema.ts';
import type { PendingRow } from './schema.ts';

/*
 * The audit log's SQL. The two hot statements (the batch insert and the chain write-back) are
 * built as plain compiled queries: no per-value builder nodes, one statement per batch. On
 * PostgreSQL they pass one array per column through unnest(), so the statement text and its
 * parameter count do not grow with the batch.
 */

type Db = Kysely<Database>;

export const INSERT_COLUMNS = [
  'at',
  'actor',
  'action',
  'subject_id',
  'collection',
  'record_id',
  'fields',
  'purpose',
  'outcome',
  'request_id',
  'record_version',
  'nonce',
  'mac',
] as const;

const COLUMN_LIST = INSERT_COLUMNS.join(', ');
/** SQLite allows 32766 bound values per statement; stay well below. */
const SQLITE_ROWS_PER_INSERT = 1000;
const SQLITE_ROWS_PER_UPDATE = 2000;

const PG_INSERT = `INSERT INTO audit_log (${COLUMN_LIST}) SELECT * FROM unnest(${INSERT_COLUMNS.map((c, i) => `$${i + 1}::${c === 'record_version' ? 'integer' : 'text'}[]`).join(', ')})`;

function placeholders(rows: number, columns: number): string {
  const tuple = `(${new Array<string>(columns).fill('?').join(', ')})`;
  return new Array<string>(rows).fill(tuple).join(', ');
}

/** PostgreSQL: the batch insert as one constant statement and its parameters (one array per column). */
export function pgInsert(rows: readonly PendingRow[]): [sql: string, parameters: unknown[]] {
  return [PG_INSERT, INSERT_COLUMNS.map((c) => rows.map((r) => r[c]))];
}

/** Inserts pending rows with one statement per batch (SQLite: per 1000 rows). */
export async function insertPending(db: Db, dialect: Dialect, rows: readonly PendingRow[]): Promise<void> {
  if (rows.length === 0) return;
  if (dialect === 'postgres') {
    await db.executeQuery(CompiledQuery.raw(...pgInsert(rows)));
    return;
  }
  for (let start = 0; start < rows.length; start += SQLITE_ROWS_PER_INSERT) {
    const chunk = rows.slice(start, start + SQLITE_ROWS_PER_INSERT);
    const params: unknown[] = [];
    for (const r of chunk) for (const c of INSERT_COLUMNS) params.push(r[c]);
    await db.executeQuery(
      CompiledQuery.raw(`INSERT INTO audit_log (${COLUMN_LIST}) VALUES ${placeholders(chunk.length, INSERT_COLUMNS.length)}`, params),
    );
  }
}

export interface Head {
  seq: number;
  hash: string;
}

/**
 * Takes the chain-head lock with one statement (a no-op UPDATE holds the row lock on PostgreSQL
 * and the write lock on SQLite until the transaction ends) and returns the head.
 */
export async function lockHead(tx: Db): Promise<Head> {
  const result = await tx.executeQuery<Head>(CompiledQuery.raw('UPDATE audit_head SET seq = seq WHERE id = 1 RETURNING seq, hash'));
  const head = result.rows[0];
  if (head === undefined) throw new Error('audit_head row is missing');
  return { seq: Number(head.seq), hash: head.hash };
}

export type StoredRow = Selectable<Database['audit_log']>;

/** Oldest pending, not rejected rows, in id order (the partial index audit_log_pending). */
export async function selectPending(tx: Db, limit: number): Promise<StoredRow[]> {
  return tx
    .selectFrom('audit_log')
    .selectAll()
    .where('seq', 'is', null)
    .where('rejected', 'is', null)
    .orderBy('id')
    .limit(limit)
    .execute();
}

export interface ChainedRow {
  id: number;
  seq: number;
  prev_hash: string;
  hash: string;
}

/** Writes seq/prev_hash/hash of chained rows; throws if any row was no longer pending. */
export async function writeChain(tx: Db, dialect: Dialect, rows: readonly ChainedRow[]): Promise<void> {
  if (rows.length === 0) return;
  let updated = 0;
  if (dialect === 'postgres') {
    const result = await tx.executeQuery(
      CompiledQuery.raw(
        `UPDATE audit_log AS a SET seq = v.seq, prev_hash = v.prev_hash, hash = v.hash
         FROM unnest($1::bigint[], $2::bigint[], $3::text[], $4::text[]) AS v(id, seq, prev_hash, hash)
         WHERE a.id = v.id AND a.seq IS NULL AND a.rejected IS NULL`,
        [rows.map((r) => r.id), rows.map((r) => r.seq), rows.map((r) => r.prev_hash), rows.map((r) => r.hash)],
      ),
    );
    updated = Number(result.numAffectedRows ?? 0n);
  } else {
    for (let start = 0; start < rows.length; start += SQLITE_ROWS_PER_UPDATE) {
      const chunk = rows.slice(start, start + SQLITE_ROWS_PER_UPDATE);
      // The unary + keeps SQLite from driving the join through the seq index (every pending row
      // times every VALUES row, quadratic): it must walk VALUES and look rows up by rowid.
      const params: unknown[] = [];
      for (const r of chunk) params.push(r.id, r.seq, r.prev_hash, r.hash);
      const result = await tx.executeQuery(
        CompiledQuery.raw(
          `UPDATE audit_log SET seq = v.column2, prev_hash = v.column3, hash = v.column4
           FROM (VALUES ${placeholders(chunk.length, 4)}) AS v
           WHERE audit_log.id = v.column1 AND +audit_log.seq IS NULL AND +audit_log.rejected IS NULL`,
          params,
        ),
      );
      updated += Number(result.numAffectedRows ?? 0n);
    }
  }
  if (updated !== rows.length) throw new Error(`audit chain write-back updated ${updated} of ${rows.length} rows`);
}

export async function markRejected(tx: Db, rejects: readonly { id: number; reason: string }[]): Promise<void> {
  for (const r of rejects) {
    await tx.updateTable('audit_log').set({ rejected: r.reason }).where('id', '=', r.id).where('seq', 'is', null).execute();
  }
}

export async function writeHeadAndCheckpoint(
  tx: Db,
  checkpoint: { seq: number; hash: string; signature: string; key_id: string; at: string },
): Promise<void> {
  await tx.updateTable('audit_head').set({ seq: checkpoint.seq, hash: checkpoint.hash }).where('id', '=', 1).execute();
  await tx.insertInto('audit_checkpoints').values(checkpoint).execute();
}

/** Cheap probe that lets an idle chainer skip taking the head lock. */
export async function hasPending(db: Db): Promise<boolean> {
  const row = await db
    .selectFrom('audit_log')
    .select('id')
    .where('seq', 'is', null)
    .where('rejected', 'is', null)
    .limit(1)
    .executeTakeFirst();
  return row !== undefined;
}

/** Entries about one data subject, newest first, before an id cursor. */
export async function selectForSubject(db: Db, subjectId: string, limit: number, before: number | undefined): Promise<StoredRow[]> {
  let q = db.selectFrom('audit_log').selectAll().where('subject_id', '=', subjectId).where('rejected', 'is', null);
  if (before !== undefined) q = q.where('id', '<', before);
  return q.orderBy('id', 'desc').limit(limit).execute();
}

/** Entries whose action starts with `prefix` (a capability's own actions), oldest first, after row `after`. */
export async function selectByAction(db: Db, prefix: string, limit: number, after: number): Promise<StoredRow[]> {
  return db
    .selectFrom('audit_log')
    .selectAll()
    .where(sql<string>`substr(action, 1, ${sql.lit(prefix.length)})`, '=', prefix)
    .where('id', '>', after)
    .orderBy('id')
    .limit(limit)
    .execute();
}
