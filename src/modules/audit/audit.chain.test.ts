import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../kernel/errors.ts';
import type { Store } from '../../store/database.ts';
import { TEST_DIALECT, testStore } from '../../../test/support/store.ts';
import { GENESIS_HASH } from './canonical.ts';
import { verifyAuditLog, type AuditLog } from './service.ts';
import { sampleEntry, testAuditKeys, testAuditLog } from './testing.ts';

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

  it('commits read entries (group commit) and write entries, then chains them into one verified chain', async () => {
    await Promise.all(Array.from({ length: 50 }, (_, i) => log.append(sampleEntry(i))));
    await store.db.transaction().execute(async (tx) => {
      await log.appendInTx(tx, sampleEntry(100, { action: 'vault.create' }));
    });
    const before = await verifyAuditLog({ db: store.db, keys });
    expect(before).toMatchObject({ ok: true, entries: 0, pending: 51 });

    expect(await log.chainPending()).toBe(51);
    const after = await verifyAuditLog({ db: store.db, keys });
    expect(after).toMatchObject({ ok: true, entries: 51, pending: 0, checkpoints: 1 });

    const rows = await store.db.selectFrom('audit_log').selectAll().orderBy('seq').execute();
    expect(rows.map((r) => Number(r.seq))).toEqual(Array.from({ length: 51 }, (_, i) => i + 1));
    expect(rows[0]!.prev_hash).toBe(GENESIS_HASH);
    for (let i = 1; i < rows.length; i++) expect(rows[i]!.prev_hash).toBe(rows[i - 1]!.hash);
    const head = await store.db.selectFrom('audit_head').selectAll().executeTakeFirstOrThrow();
    expect({ seq: Number(head.seq), hash: head.hash }).toEqual({ seq: 51, hash: rows[50]!.hash });
    // Field names are stored, values never are.
    expect(JSON.parse(rows[1]!.fields)).toEqual(['email', 'address.city']);
  });

  it('extends the chain across passes, with a signed checkpoint per pass', async () => {
    for (let pass = 0; pass < 3; pass++) {
      await Promise.all(Array.from({ length: 7 }, (_, i) => log.append(sampleEntry(pass * 10 + i))));
      expect(await log.chainPending()).toBe(7);
    }
    expect(await log.chainPending()).toBe(0);
    const result = await verifyAuditLog({ db: store.db, keys });
    expect(result).toMatchObject({ ok: true, entries: 21, checkpoints: 3, pending: 0 });
    const cps = await store.db.selectFrom('audit_checkpoints').select('seq').orderBy('seq').execute();
    expect(cps.map((c) => Number(c.seq))).toEqual([7, 14, 21]);
  });

  it('verifies page by page, reporting progress, across more entries than one page or one chain pass', async () => {
    await Promise.all(Array.from({ length: 2600 }, (_, i) => log.append(sampleEntry(i))));
    expect(await log.chainPending()).toBe(2600);
    await Promise.all(Array.from({ length: 5 }, (_, i) => log.append(sampleEntry(i))));
    const progress: [number, number][] = [];
    const result = await verifyAuditLog({ db: store.db, keys }, (done, total) => progress.push([done, total]));
    expect(result).toMatchObject({ ok: true, entries: 2600, pending: 5, checkpoints: 2 });
    expect(progress.length).toBeGreaterThanOrEqual(3);
    expect(progress.at(-1)).toEqual([2605, 2605]);
  });

  it('chains in the background once started, and stop() leaves nothing pending', async () => {
    log.start();
    await Promise.all(Array.from({ length: 30 }, (_, i) => log.append(sampleEntry(i))));
    for (let tries = 0; tries < 500; tries++) {
      const pending = await store.db.selectFrom('audit_log').select('id').where('seq', 'is', null).execute();
      if (pending.length === 0) break;
      await new Promise((r) => setTimeout(r, 10));
    }
    void log.append(sampleEntry(99)).catch(() => undefined);
    await log.stop();
    expect(await verifyAuditLog({ db: store.db, keys })).toMatchObject({ ok: true, entries: 31, pending: 0 });
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

  it('lists the entries about one subject, newest first, paged by id, pending ones included', async () => {
    for (let i = 0; i < 12; i++) await log.append(sampleEntry(i, { subjectId: i % 2 === 0 ? 'cus_even' : 'cus_odd', requestId: `r${i}` }));
    await log.chainPending();
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
