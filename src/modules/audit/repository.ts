import { CompiledQuery, sql, type Kysely, type Selectable } from 'kysely';
import type { Dialect } from '../../store/database.ts';
import type { Database } from '../../store/schema.ts';
import type { PendingRow } from './schema.ts';

/*
 * The audit log's SQL. Entries are inserted once and never updated. The hot statement (the batch
 * insert) is built as a plain compiled query: no per-value builder nodes, one statement per
 * batch. On PostgreSQL it passes one array per column through unnest(), so the statement text and
 * its parameter count do not grow with the batch.
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

export type StoredRow = Selectable<Database['audit_log']>;

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
