/**
 * Worker thread of the SQLite audit log (see sqlite-thread.ts). Its own connection to the
 * database file commits each batch of entries and runs the tree builder (MAC checks, hashes,
 * signatures and inserts, all off the event loop), so that the fsync of those commits
 * (synchronous=FULL, as the store sets it) blocks this thread and not the server's event loop.
 * Messages are handled strictly one after another: a batch insert never lands inside a builder
 * transaction on the same connection.
 */
import { parentPort, workerData } from 'node:worker_threads';
import SQLite from 'better-sqlite3';
import { Kysely } from 'kysely';
import { cachingStatements, ImmediateSqliteDialect } from '../../store/database.ts';
import type { AuditKeys } from '../../crypto/keyring.ts';
import type { Database } from '../../store/schema.ts';
import type { BuildRun } from './backend.ts';
import { buildAll } from './tree-builder.ts';

export type ThreadRequest =
  | { id: number; kind: 'insert'; rows: string }
  | ({ id: number; kind: 'build'; at: string } & BuildRun)
  | { id: number; kind: 'close' };
export type ThreadReply =
  | { id: number; ok: true; admitted?: number; rejected?: { id: number; reason: string }[] }
  | { id: number; ok: false; message: string; code: string };

const { file, columns, keys } = workerData as {
  file: string;
  columns: readonly string[];
  keys: AuditKeys;
};
const port = parentPort;
if (port === null) throw new Error('sqlite-thread-worker runs as a worker thread');

const sqlite = new SQLite(file);
sqlite.pragma('synchronous = FULL');
sqlite.pragma('busy_timeout = 10000');
// The builder's statements are the same every pass: prepared once (the store's statement cache).
const db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: cachingStatements(sqlite) }) });
// One constant statement, prepared on first use: the batch arrives as a JSON array of rows.
const INSERT = `INSERT INTO audit_log (${columns.join(', ')}) SELECT ${columns.map((_, i) => `value ->> ${i}`).join(', ')} FROM json_each(?)`;
let insert: SQLite.Statement | undefined;

async function handle(msg: ThreadRequest): Promise<ThreadReply> {
  switch (msg.kind) {
    case 'insert':
      insert ??= sqlite.prepare(INSERT);
      insert.run(msg.rows);
      return { id: msg.id, ok: true };
    case 'build': {
      const at = new Date(msg.at);
      const report = await buildAll({ db, dialect: 'sqlite', keys, clock: { now: () => at }, holder: msg.holder, leaseMs: msg.leaseMs, batch: msg.batch, heads: msg.heads });
      return { id: msg.id, ok: true, admitted: report.admitted, rejected: report.refused };
    }
    case 'close':
      await db.destroy();
      return { id: msg.id, ok: true };
  }
}

let queue: Promise<void> = Promise.resolve();
port.on('message', (msg: ThreadRequest) => {
  queue = queue.then(async () => {
    let reply: ThreadReply;
    try {
      reply = await handle(msg);
    } catch (error) {
      const e = error as { message?: unknown; code?: unknown };
      reply = { id: msg.id, ok: false, message: String(e.message ?? 'audit thread request failed'), code: String(e.code ?? '') };
    }
    port.postMessage(reply);
    if (msg.kind === 'close') port.close();
  });
});
