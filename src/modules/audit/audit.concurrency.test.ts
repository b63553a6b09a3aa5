import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { openStore, type Store } from '../../store/database.ts';
import { TEST_DIALECT, testStore } from '../../../test/support/store.ts';
import { verifyAuditLog } from './service.ts';
import { verifyAuditTree } from './verify-tree.ts';
import { sampleEntry, testAuditKeys, testAuditLog } from './testing.ts';

/*
 * Several server processes share one database. Each has its own pool (or SQLite connection),
 * its own group commit and its own tree builder; the builders take turns by the lease, and
 * together they must keep ONE valid tree with every entry a leaf exactly once.
 */
let store: Store & { test: { database: Parameters<typeof openStore>[0]; env: Record<string, string> } };

beforeEach(async () => {
  store = await testStore();
});
afterEach(async () => {
  await store.close();
});

async function requestIds(): Promise<string[]> {
  const rows = await store.db.selectFrom('audit_log').select('request_id').execute();
  return rows.map((r) => r.request_id ?? '').sort();
}

/**
 * As `custos audit verify` does: admit what still waits (a process that stopped while another held
 * the lease leaves its last entries to the next builder), then check the chain and the tree.
 */
async function verifyAll(keys: ReturnType<typeof testAuditKeys>) {
  const last = testAuditLog(store, keys);
  await last.chainPending();
  await last.stop();
  expect(await verifyAuditLog({ db: store.db, keys })).toMatchObject({ ok: true, entries: 0 });
  const leaves = await store.db.selectFrom('audit_tree_leaves').select('entry_id').execute();
  expect(new Set(leaves.map((l) => l.entry_id)).size).toBe(leaves.length);
  return verifyAuditTree({ db: store.db, keys });
}

describe('audit log under concurrent writers', () => {
  it('independent stores appending and building at once keep one valid tree', async () => {
    const keys = testAuditKeys();
    // PostgreSQL: three pools, as three server processes would have. SQLite: three audit logs,
    // each with its own audit thread and connection, beside the store's connection that commits
    // the writes (appendInTx). Two better-sqlite3 connections on the SAME thread would block each
    // other (a synchronous busy wait cannot let the other's open transaction finish), hence one
    // store. Separate processes are the next test.
    const own = TEST_DIALECT === 'postgres';
    const stores = own ? await Promise.all([1, 2, 3].map(() => openStore(store.test.database))) : [store, store, store];
    try {
      const logs = stores.map((s) => testAuditLog(s, keys, { flushMs: 1, chainIntervalMs: 3, batchSize: 16, sqliteThread: true }));
      for (const l of logs) l.start();
      const perStore = 120;
      await Promise.all(
        logs.map((l, n) =>
          Promise.all(
            Array.from({ length: perStore }, (_, i) => {
              const entry = sampleEntry(i, { requestId: `s${n}-${i}` });
              if (i % 4 === 0) return stores[n]!.db.transaction().execute((tx) => l.appendInTx(tx, { ...entry, action: 'vault.update' }));
              if (i % 30 === 0) return l.chainPending().then(() => l.append(entry));
              return l.append(entry);
            }),
          ),
        ),
      );
      await Promise.all(logs.map((l) => l.stop()));
    } finally {
      if (own) await Promise.all(stores.map((s) => s.close()));
    }
    expect(await verifyAll(keys)).toMatchObject({ ok: true, treeSize: 361, pending: 0 });
    const ids = await requestIds();
    expect(new Set(ids).size).toBe(360);
  });

  it('separate node processes on the same database keep one valid tree', { timeout: 120_000 }, async () => {
    const rootKey = randomBytes(32);
    const keys = testAuditKeys(rootKey);
    const worker = fileURLToPath(new URL('./test-support/concurrency-worker.ts', import.meta.url));
    const perWorker = 150;
    const run = (tag: string) =>
      new Promise<void>((resolve, reject) => {
        const child = spawn(process.execPath, [worker], {
          env: {
            PATH: process.env.PATH ?? '',
            ...store.test.env,
            DATABASE_POOL_SIZE: '3',
            CUSTOS_ROOT_KEY: rootKey.toString('base64'),
            AUDIT_WORKER_COUNT: String(perWorker),
            AUDIT_WORKER_TAG: tag,
          },
          stdio: ['ignore', 'ignore', 'pipe'],
        });
        let stderr = '';
        child.stderr.on('data', (d: Buffer) => {
          stderr += d.toString();
        });
        child.on('error', reject);
        child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`worker ${tag} exited ${code}: ${stderr.slice(-2000)}`))));
      });
    // The test process writes too, so four processes share the chain.
    const local = testAuditLog(store, keys, { flushMs: 1, chainIntervalMs: 5, sqliteThread: true });
    local.start();
    const mine = Promise.all(Array.from({ length: 100 }, (_, i) => local.append(sampleEntry(i, { requestId: `p-${i}` }))));
    await Promise.all([run('a'), run('b'), run('c'), mine]);
    await local.stop();
    expect(await verifyAll(keys)).toMatchObject({ ok: true, treeSize: 3 * perWorker + 100 + 1, pending: 0 });
    expect(new Set(await requestIds()).size).toBe(3 * perWorker + 100);
  });
});
