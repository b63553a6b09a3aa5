/**
 * kill -9 of the tree builder in the middle of its work: a builder in another process is killed
 * with SIGKILL after its first pass; once its lease expires a builder here takes over, finishes,
 * and every entry is a leaf exactly once and the tree verifies.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../store/database.ts';
import { testStore, TEST_DIALECT } from '../../../test/support/store.ts';
import { systemClock } from '../../kernel/clock.ts';
import { insertPending } from './repository.ts';
import { sampleEntry, testAuditKeys, testAuditLog } from './testing.ts';
import { buildAll } from './tree-builder.ts';
import { treeSize } from './tree-store.ts';
import { verifyAuditTree } from './verify-tree.ts';

let store: Awaited<ReturnType<typeof testStore>>;
const rootKey = randomBytes(32);
const keys = testAuditKeys(rootKey);
const COUNT = 3000;

beforeAll(async () => {
  store = await testStore();
  const log = testAuditLog(store as Store, keys);
  await log.chainPending(); // leaf 0 on the empty log
  const rows = Array.from({ length: COUNT }, (_, i) => log.pendingRow(sampleEntry(i)));
  for (let i = 0; i < rows.length; i += 500) await insertPending(store.db, store.dialect, rows.slice(i, i + 500));
  // Not stopped (stopping builds the tree): the lease of its one pass is let go instead.
  await store.db.updateTable('audit_tree_lease').set({ expires_ms: 0 }).execute();
});
afterAll(async () => {
  await store.close();
});

describe(`tree builder crash (${TEST_DIALECT})`, () => {
  it('kill -9 of the tree builder mid-batch: restarted, it finishes and admits nothing twice', async () => {
    const worker = fileURLToPath(new URL('./test-support/tree-builder-worker.ts', import.meta.url));
    const child = spawn(process.execPath, [worker], {
      env: { PATH: process.env.PATH ?? '', ...store.test.env, DATABASE_POOL_SIZE: '2', CUSTOS_ROOT_KEY: rootKey.toString('base64'), AUDIT_TREE_BATCH: '10' },
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    await new Promise<void>((resolve, reject) => {
      child.on('error', reject);
      child.on('exit', () => reject(new Error('the builder finished before it was killed')));
      child.stdout.on('data', () => {
        child.kill('SIGKILL');
        resolve();
      });
    });
    await new Promise((r) => child.once('close', r));
    const atKill = await treeSize(store.db);
    expect(atKill).toBeGreaterThan(1);
    expect(atKill).toBeLessThan(COUNT + 1);

    // Its lease is still held: a new builder waits for it to expire, then takes over.
    let report = await buildAll({ db: store.db, dialect: store.dialect, keys, clock: systemClock, holder: 'restarted', leaseMs: 300, batch: 500 });
    for (let i = 0; report.leased === false && i < 50; i++) {
      await new Promise((r) => setTimeout(r, 100));
      report = await buildAll({ db: store.db, dialect: store.dialect, keys, clock: systemClock, holder: 'restarted', leaseMs: 300, batch: 500 });
    }
    expect(await treeSize(store.db)).toBe(COUNT + 1);
    const ids = await store.db.selectFrom('audit_tree_leaves').select('entry_id').execute();
    expect(new Set(ids.map((r) => r.entry_id)).size).toBe(COUNT + 1);
    expect(await verifyAuditTree({ db: store.db, keys })).toMatchObject({ ok: true, treeSize: COUNT + 1 });
  });
});
