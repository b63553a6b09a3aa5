import { sql, type Kysely } from 'kysely';
import type { AuditKeys } from '../../crypto/keyring.ts';
import type { Clock } from '../../kernel/clock.ts';
import type { Dialect } from '../../store/database.ts';
import type { Database } from '../../store/schema.ts';
import { insertPending, pgInsert } from './repository.ts';
import type { PendingRow } from './schema.ts';
import { createSqliteThread, type AuditThread } from './sqlite-thread.ts';
import { buildAll } from './tree-builder.ts';

/** What a tree-building run reports back (entries it refused, for the log). */
export interface BuildReport {
  admitted: number;
  refused: { id: number; reason: string }[];
}

/** The tree builder's lease holder, batch and when it signs heads (tree-builder.ts). */
export interface BuildRun {
  readonly holder: string;
  readonly leaseMs: number;
  readonly batch: number;
  readonly heads: { readonly intervalMs: number; readonly entries: number; readonly force: boolean };
}

/** Where batches are committed and the tree builder runs: this thread, or the SQLite audit thread. */
export interface AuditBackend {
  /**
   * True when batches are committed one after another on one connection (the SQLite thread): a
   * second batch sent alongside would only wait in line, and smaller batches mean more commits.
   */
  readonly serial: boolean;
  insert(rows: readonly PendingRow[]): Promise<void>;
  /** Tree builder passes until no full batch is left (or another process holds the lease). */
  build(run: BuildRun): Promise<BuildReport>;
  close(): Promise<void>;
}

/**
 * PostgreSQL (and SQLite without a file, or with `thread` off): everything on the store's own
 * connections; the pg driver never blocks the event loop. SQLite with a file: a worker thread with
 * its own connection (sqlite-thread.ts), found from the store's connection on first use.
 */
export function createAuditBackend(deps: {
  db: Kysely<Database>;
  dialect: Dialect;
  keys: AuditKeys;
  clock: Clock;
  thread: boolean;
  /** Runs one statement outside any transaction, prepared once per connection (Store.read). */
  statement?: ((sql: string, parameters: readonly unknown[]) => Promise<unknown>) | undefined;
}): AuditBackend {
  const { db, dialect, keys, clock, statement } = deps;
  const local = {
    // PostgreSQL: a named statement, so that the database plans the batch insert once per
    // connection rather than once per batch.
    insert: (rows: readonly PendingRow[]) =>
      dialect === 'postgres' && statement !== undefined && rows.length > 0 ? statement(...pgInsert(rows)).then(() => undefined) : insertPending(db, dialect, rows),
    build: (run: BuildRun) => buildAll({ db, dialect, keys, clock, ...run }),
  };
  if (dialect !== 'sqlite' || !deps.thread) return { ...local, serial: false, close: async () => undefined };

  let thread: Promise<AuditThread | undefined> | undefined;
  function get(): Promise<AuditThread | undefined> {
    if (thread === undefined) {
      const found = (async () => {
        const list = await sql<{ file: string }>`SELECT file FROM pragma_database_list WHERE name = 'main'`.execute(db);
        const file = list.rows[0]?.file ?? '';
        return file === '' ? undefined : createSqliteThread(file, keys);
      })();
      thread = found;
      found.catch(() => {
        if (thread === found) thread = undefined;
      });
    }
    return thread;
  }
  return {
    serial: true,
    async insert(rows) {
      const t = await get();
      await (t === undefined ? local.insert(rows) : t.insert(rows));
    },
    async build(run) {
      // On the thread: its MAC checks, hashes, inserts and the commit's fsync stay off the event loop.
      // A process that never wrote a batch (a CLI command) builds here rather than start a thread.
      const t = thread === undefined ? undefined : await thread;
      return t === undefined ? local.build(run) : t.build(clock.now(), run);
    },
    async close() {
      const t = thread;
      thread = undefined;
      await (await t?.catch(() => undefined))?.close();
    },
  };
}
