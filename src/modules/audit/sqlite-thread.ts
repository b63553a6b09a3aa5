import { Worker } from 'node:worker_threads';
import type { AuditKeys } from '../../crypto/keyring.ts';
import type { BuildReport, BuildRun } from './backend.ts';
import { INSERT_COLUMNS } from './repository.ts';
import type { PendingRow } from './schema.ts';
import type { ThreadReply, ThreadRequest } from './sqlite-thread-worker.ts';

export interface AuditThread {
  insert(rows: readonly PendingRow[]): Promise<void>;
  build(at: Date, run: BuildRun): Promise<BuildReport>;
  close(): Promise<void>;
}

/** Run from source (.ts, type stripping) or from the built package (.js). */
const EXTENSION = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

type Request = ThreadRequest extends infer R ? (R extends { id: number } ? Omit<R, 'id'> : never) : never;

/**
 * The SQLite audit log's worker thread, with its own connection to the store's file: it commits
 * the group-commit batches and runs the tree builder. better-sqlite3 is synchronous, so on the main
 * thread every commit's fsync would stop the event loop and every request with it. The thread
 * starts on first use, is started again after a crash (requests in flight then fail: fail
 * closed), and is unreferenced while idle so that it never holds the process open.
 */
export function createSqliteThread(file: string, keys: AuditKeys): AuditThread {
  type Waiting = Map<number, { resolve: (reply: ThreadReply & { ok: true }) => void; reject: (error: Error) => void }>;
  let current: { worker: Worker; waiting: Waiting } | undefined;
  let nextId = 1;

  function spawn(): { worker: Worker; waiting: Waiting } {
    const worker = new Worker(new URL(`./sqlite-thread-worker${EXTENSION}`, import.meta.url), {
      workerData: { file, columns: INSERT_COLUMNS, keys: { auditMac: keys.auditMac, auditMacPrevious: keys.auditMacPrevious, auditMacVersion: keys.auditMacVersion, auditSigning: keys.auditSigning, auditSigningPrevious: keys.auditSigningPrevious } },
    });
    // Requests belong to the thread they were sent to: when it dies, only they fail.
    const waiting: Waiting = new Map();
    const self = { worker, waiting };
    const failAll = (error: Error) => {
      if (current === self) current = undefined;
      for (const w of waiting.values()) w.reject(error);
      waiting.clear();
    };
    worker.on('message', (reply: ThreadReply) => {
      const p = waiting.get(reply.id);
      waiting.delete(reply.id);
      if (waiting.size === 0) worker.unref();
      if (p === undefined) return;
      if (reply.ok) p.resolve(reply);
      else p.reject(Object.assign(new Error(reply.message), { code: reply.code }));
    });
    worker.on('error', failAll);
    worker.on('exit', (code) => failAll(new Error(`the audit thread exited with code ${code}`)));
    return self;
  }

  function send(request: Request, to: { worker: Worker; waiting: Waiting } = (current ??= spawn())): Promise<ThreadReply & { ok: true }> {
    const id = nextId++;
    return new Promise((resolve, reject) => {
      to.waiting.set(id, { resolve, reject });
      to.worker.ref();
      to.worker.postMessage({ ...request, id });
    });
  }

  return {
    async insert(rows) {
      await send({ kind: 'insert', rows: JSON.stringify(rows.map((r) => INSERT_COLUMNS.map((c) => r[c]))) });
    },
    async build(at, run) {
      const reply = await send({ kind: 'build', at: at.toISOString(), ...run });
      return { admitted: reply.admitted ?? 0, refused: reply.rejected ?? [] };
    },
    async close() {
      const t = current;
      current = undefined;
      if (t === undefined) return;
      const exited = new Promise<void>((resolve) => t.worker.once('exit', () => resolve()));
      await send({ kind: 'close' }, t).catch(() => undefined);
      const timeout = setTimeout(() => void t.worker.terminate(), 2000);
      await exited;
      clearTimeout(timeout);
    },
  };
}
