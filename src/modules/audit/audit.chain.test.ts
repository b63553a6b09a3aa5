import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../kernel/errors.ts';
import type { Store } from '../../store/database.ts';
import { TEST_DIALECT, testStore } from '../../../test/support/store.ts';
import { verifyAuditLog, type AuditLog } from './service.ts';
import { sampleEntry, testAuditKeys, testAuditLog } from './testing.ts';
import { chainLegacy } from './test-support/legacy-chain.ts';
import { buildAll } from './tree-builder.ts';
import { legacyHead, legacySeq } from './tree-store.ts';
import { verifyAuditTree } from './verify-tree.ts';

const keys = testAuditKeys();
// SQLite runs these both on the store's connection and on the audit thread (its default).
const modes = TEST_DIALECT === 'sqlite' ? [false, true] : [false];

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
    return undefined;
  } catch (error) {
    return error instanceof AppError ? error.code : 'not an AppError';
  }
}

describe.each(modes)('audit chain (SQLite audit thread: %s)', (sqliteThread) => {
  let store: Store;
  let log: AuditLog;

  beforeEach(async () => {
    store = await testStore();
    log = testAuditLog(store, keys, { sqliteThread });
  });
  afterEach(async () => {
    await log.stop().catch(() => undefined);
    await store.close();
  });

  it('commits read entries (group commit) and write entries once; the builder admits them as leaves without updating a row', async () => {
    await Promise.all(Array.from({ length: 50 }, (_, i) => log.append(sampleEntry(i))));
    await store.db.transaction().execute(async (tx) => {
      await log.appendInTx(tx, sampleEntry(100, { action: 'vault.create' }));
    });
    const written = await store.db.selectFrom('audit_log').selectAll().orderBy('id').execute();
    expect(written).toHaveLength(51);
    expect(await log.chainPending()).toBe(51);
    // Written once: every row is exactly as inserted, never chained.
    expect(await store.db.selectFrom('audit_log').selectAll().orderBy('id').execute()).toEqual(written);
    expect(written.every((r) => r.seq === null && r.prev_hash === null && r.hash === null && r.rejected === null)).toBe(true);
    expect(await verifyAuditTree({ db: store.db, keys })).toMatchObject({ ok: true, treeSize: 52, pending: 0, head: { tree_size: 52 } });
    expect(await verifyAuditLog({ db: store.db, keys })).toMatchObject({ ok: true, entries: 0, checkpoints: 0 });
    const leaves = await store.db.selectFrom('audit_tree_leaves').select(['leaf_index', 'entry_id']).orderBy('leaf_index').execute();
    expect(leaves.slice(1).map((l) => Number(l.entry_id))).toEqual(written.map((r) => r.id));
    // Field names are stored, values never are.
    expect(JSON.parse(written[1]!.fields)).toEqual(['email', 'address.city']);
  });

  it('the chain of earlier versions stays verifiable: leaf 0 commits to its head and last checkpoint, later entries are leaves', async () => {
    await Promise.all(Array.from({ length: 7 }, (_, i) => log.append(sampleEntry(i))));
    expect(await chainLegacy(store.db, keys)).toBe(7);
    await Promise.all(Array.from({ length: 3 }, (_, i) => log.append(sampleEntry(10 + i))));
    expect(await log.chainPending()).toBe(3);
    expect(await verifyAuditLog({ db: store.db, keys })).toMatchObject({ ok: true, entries: 7, checkpoints: 1 });
    expect(await verifyAuditTree({ db: store.db, keys })).toMatchObject({ ok: true, treeSize: 4, pending: 0 });
    const cp = await store.db.selectFrom('audit_checkpoints').selectAll().executeTakeFirstOrThrow();
    expect(await legacyHead(store.db, await legacySeq(store.db))).toEqual({ seq: 7, hash: cp.hash, checkpoint: { signature: cp.signature, key_id: cp.key_id, at: cp.at } });
  });

  it('verifies the chain of earlier versions page by page, reporting progress, across more entries than one page', async () => {
    await Promise.all(Array.from({ length: 2600 }, (_, i) => log.append(sampleEntry(i))));
    expect(await chainLegacy(store.db, keys)).toBe(2600);
    await Promise.all(Array.from({ length: 5 }, (_, i) => log.append(sampleEntry(i))));
    const progress: [number, number][] = [];
    const result = await verifyAuditLog({ db: store.db, keys }, (done, total) => progress.push([done, total]));
    expect(result).toMatchObject({ ok: true, entries: 2600, checkpoints: 1 });
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect(progress.at(-1)).toEqual([2600, 2600]);
  });

  it('builds in the background once started, and stop() leaves nothing waiting and everything under a signed head', async () => {
    log.start();
    await Promise.all(Array.from({ length: 30 }, (_, i) => log.append(sampleEntry(i))));
    for (let tries = 0; tries < 500; tries++) {
      const waiting = await store.db.selectFrom('audit_tree_pending').select('entry_id').execute();
      if (waiting.length === 0) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    void log.append(sampleEntry(99)).catch(() => undefined);
    await log.stop();
    expect(await verifyAuditTree({ db: store.db, keys })).toMatchObject({ ok: true, treeSize: 32, pending: 0, head: { tree_size: 32 } });
  });

  it('signs tree heads at the bounded interval and entry count, not on every pass', async () => {
    let now = Date.parse('2026-12-03T12:00:00.000Z');
    const clock = { now: () => new Date(now) };
    const run = (force = false) =>
      buildAll({ db: store.db, dialect: store.dialect, keys, clock, holder: 'heads', leaseMs: 60_000, batch: 100, heads: { intervalMs: 1000, entries: 5, force } });
    const add = async (n: number) => {
      for (let i = 0; i < n; i++) await log.append(sampleEntry(i));
    };
    const heads = async () => (await store.db.selectFrom('audit_tree_heads').select('tree_size').orderBy('tree_size').execute()).map((h) => Number(h.tree_size));
    await run(); // leaf 0: the first head is due at once
    expect(await heads()).toEqual([1]);
    await add(2);
    await run();
    expect(await heads()).toEqual([1]); // 2 leaves beyond the head, 0 ms after it: none due
    now += 1000;
    await run();
    expect(await heads()).toEqual([1, 3]); // the interval passed with no new entry: signed now
    await add(5);
    await run();
    expect(await heads()).toEqual([1, 3, 8]); // 5 leaves beyond the head: the count is reached
    await add(1);
    await run(true);
    expect(await heads()).toEqual([1, 3, 8, 9]); // forced (the CLI, a stopping process)
    expect(await verifyAuditTree({ db: store.db, keys })).toMatchObject({ ok: true, treeSize: 9 });
  });

  it('a write and its entry commit together: a rolled-back write leaves no entry', async () => {
    await sql`CREATE TABLE audit_test_writes (id integer primary key)`.execute(store.db);
    await expect(
      store.db.transaction().execute(async (tx) => {
        await sql`INSERT INTO audit_test_writes (id) VALUES (1)`.execute(tx);
        await log.appendInTx(tx, sampleEntry(1, { action: 'vault.create' }));
        throw new Error('the write failed after its entry');
      }),
    ).rejects.toThrow('the write failed');
    const entries = await store.db.selectFrom('audit_log').select('id').execute();
    expect(entries).toHaveLength(0);
  });

  it('fails closed: when the entry cannot be written the read promise rejects AUDIT_UNAVAILABLE', async () => {
    await sql`ALTER TABLE audit_log RENAME TO audit_log_away`.execute(store.db);
    const results = await Promise.all([1, 2, 3].map((i) => codeOf(log.append(sampleEntry(i)))));
    expect(results).toEqual(['AUDIT_UNAVAILABLE', 'AUDIT_UNAVAILABLE', 'AUDIT_UNAVAILABLE']);
    // A write whose entry cannot be written fails too, taking the write with it.
    const inTx = await codeOf(store.db.transaction().execute((tx) => log.appendInTx(tx, sampleEntry(4))));
    expect(inTx).toBe('AUDIT_UNAVAILABLE');
    await sql`ALTER TABLE audit_log_away RENAME TO audit_log`.execute(store.db);
    await expect(log.append(sampleEntry(5))).resolves.toBeUndefined();
  });

  it('refuses appends after stop() (fail closed) and accepts them again after start()', async () => {
    await log.stop();
    expect(await codeOf(log.append(sampleEntry(1)))).toBe('AUDIT_UNAVAILABLE');
    log.start();
    await expect(log.append(sampleEntry(2))).resolves.toBeUndefined();
  });

  it('refuses entries that carry values instead of names', async () => {
    expect(await codeOf(log.append(sampleEntry(1, { fields: ['ada@example.com'] })))).toBe('AUDIT_ENTRY_INVALID');
    expect(await codeOf(log.append(sampleEntry(1, { actor: 'customer:ada@example.com' })))).toBe('AUDIT_ENTRY_INVALID');
    expect(await codeOf(log.append(sampleEntry(1, { purpose: 'Ada Lovelace' })))).toBe('AUDIT_ENTRY_INVALID');
    try {
      await log.append(sampleEntry(1, { fields: ['ada@example.com'] }));
    } catch (error) {
      expect(String((error as Error).message)).not.toContain('ada@');
    }
    expect(await store.db.selectFrom('audit_log').select('id').execute()).toHaveLength(0);
  });

  it('lists the entries about one subject, newest first, paged by id, chained ones of earlier versions included', async () => {
    for (let i = 0; i < 12; i++) await log.append(sampleEntry(i, { subjectId: i % 2 === 0 ? 'cus_even' : 'cus_odd', requestId: `r${i}` }));
    await chainLegacy(store.db, keys);
    await log.append(sampleEntry(12, { subjectId: 'cus_even', requestId: 'r12' }));
    const first = await log.forSubject('cus_even', { limit: 4 });
    expect(first.map((r) => r.requestId)).toEqual(['r12', 'r10', 'r8', 'r6']);
    expect(first[0]!.seq).toBeNull();
    expect(first[1]!.seq).not.toBeNull();
    const next = await log.forSubject('cus_even', { limit: 4, before: first[3]!.id });
    expect(next.map((r) => r.requestId)).toEqual(['r4', 'r2', 'r0']);
    expect(next[1]).toMatchObject({ subjectId: 'cus_even', collection: 'customers', fields: ['email', 'address.city'] });
    expect(await codeOf(log.forSubject('cus_even', { limit: 0 }))).toBe('AUDIT_QUERY_INVALID');
  });

  it('does not show a subject an entry forged into the database', async () => {
    await log.append(sampleEntry(1, { subjectId: 'cus_x', requestId: 'real' }));
    await store.db
      .insertInto('audit_log')
      .values({
        at: new Date().toISOString(),
        actor: 'staff:stf_mallory',
        action: 'vault.read',
        subject_id: 'cus_x',
        collection: 'customers',
        record_id: 'cus_x',
        fields: '[]',
        purpose: 'support',
        outcome: 'success',
        request_id: 'forged',
        nonce: 'forged-nonce',
        mac: 'ab'.repeat(32),
        prev_hash: null,
        hash: null,
        seq: null,
        rejected: null,
      })
      .execute();
    const rows = await log.forSubject('cus_x', { limit: 10 });
    expect(rows.map((r) => r.requestId)).toEqual(['real']);
  });
});
