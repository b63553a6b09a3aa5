/**
 * Attacks on the audit log by someone who can change the database (a database administrator, a
 * stolen backup restored with edits) but holds neither the audit MAC key nor the signing key.
 * Each test makes one such change and checks that verification fails and names the first bad
 * entry: on the hash chain of earlier versions (written here by the legacy-chain fixture, as
 * those versions did) and on entries written since, which are never chained and are checked as
 * leaves of the tree (audit.tree-attacks.test.ts has the tree's own attacks). PCI DSS 4.0.1
 * 10.3.4 (change detection on audit logs).
 */
import { generateKeyPairSync } from 'node:crypto';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../../store/database.ts';
import { testStore } from '../../../test/support/store.ts';
import { chainHash, entryText, signCheckpoint } from './canonical.ts';
import { verifyAuditLog, type AuditLog, type VerifyResult } from './service.ts';
import { sampleEntry, testAuditKeys, testAuditLog } from './testing.ts';
import { chainLegacy } from './test-support/legacy-chain.ts';
import { verifyAuditTree } from './verify-tree.ts';

let store: Store;
const keys = testAuditKeys();
let log: AuditLog;

/** Ten entries chained as earlier versions did, two passes: signed checkpoints at seq 5 and seq 10. */
beforeEach(async () => {
  store = await testStore();
  log = testAuditLog(store, keys);
  for (let pass = 0; pass < 2; pass++) {
    for (let i = 0; i < 5; i++) await log.append(sampleEntry(pass * 5 + i));
    await chainLegacy(store.db, keys);
  }
});
afterEach(async () => {
  await log.stop().catch(() => undefined);
  await store.close();
});

const verify = (anchor?: { seq: number; hash: string }) => verifyAuditLog({ db: store.db, keys, anchor });

async function row(seq: number) {
  return store.db.selectFrom('audit_log').selectAll().where('seq', '=', seq).executeTakeFirstOrThrow();
}

function expectBad(result: VerifyResult, seq: number | null, id: number, reason: RegExp): void {
  expect(result.ok).toBe(false);
  if (result.ok) return;
  expect(result.firstBad).toEqual({ seq, id });
  expect(result.reason).toMatch(reason);
}

describe('audit tamper detection', () => {
  it('an intact log verifies', async () => {
    expect(await verify()).toMatchObject({ ok: true, entries: 10, checkpoints: 2 });
  });

  it('altered: one changed column is named', async () => {
    const r3 = await row(3);
    await store.db.updateTable('audit_log').set({ purpose: 'marketing' }).where('id', '=', r3.id).execute();
    expectBad(await verify(), 3, r3.id, /MAC/);
  });

  it('altered, with every later hash and the head recomputed (SHA-256 needs no key): the MAC still fails', async () => {
    const rows = await store.db.selectFrom('audit_log').selectAll().orderBy('seq').execute();
    let prev = rows[1]!.hash!;
    for (const r of rows.slice(2)) {
      const changed = r.seq === 3 ? { ...r, actor: 'system' } : r;
      const hash = chainHash(prev, Number(r.seq), r.id, r.mac, entryText(changed));
      await store.db.updateTable('audit_log').set({ actor: changed.actor, prev_hash: prev, hash }).where('id', '=', r.id).execute();
      prev = hash;
    }
    await store.db.updateTable('audit_head').set({ hash: prev }).where('id', '=', 1).execute();
    expectBad(await verify(), 3, rows[2]!.id, /MAC/);
  });

  it('deleted: the entry after the gap is named', async () => {
    const r5 = await row(5);
    await store.db.deleteFrom('audit_log').where('seq', '=', 4).execute();
    expectBad(await verify(), 5, r5.id, /seq 4 is missing/);
  });

  it('deleted and the later entries renumbered to close the gap', async () => {
    const r5 = await row(5);
    await store.db.deleteFrom('audit_log').where('seq', '=', 4).execute();
    for (let s = 5; s <= 10; s++) await store.db.updateTable('audit_log').set({ seq: s - 1 }).where('seq', '=', s).execute();
    expectBad(await verify(), 4, r5.id, /prev_hash|hash/);
  });

  it('inserted: a forged entry spliced into the middle, later entries renumbered', async () => {
    const r5 = await row(5);
    for (let s = 10; s >= 6; s--) await store.db.updateTable('audit_log').set({ seq: s + 1 }).where('seq', '=', s).execute();
    const forged = {
      at: new Date().toISOString(),
      actor: 'staff:stf_mallory',
      action: 'vault.read',
      subject_id: 'cus_1',
      collection: 'customers',
      record_id: 'cus_1',
      fields: '[]',
      purpose: 'support',
      outcome: 'success',
      request_id: 'req-x',
      nonce: 'forged.1',
      mac: '00'.repeat(32),
    };
    const inserted = await store.db
      .insertInto('audit_log')
      .values({ ...forged, seq: 6, prev_hash: r5.hash, hash: 'x', rejected: null })
      .returning('id')
      .executeTakeFirstOrThrow();
    const hash = chainHash(r5.hash!, 6, inserted.id, forged.mac, entryText(forged));
    await store.db.updateTable('audit_log').set({ hash }).where('id', '=', inserted.id).execute();
    expectBad(await verify(), 6, inserted.id, /MAC/);
  });

  it('inserted beyond the head, with a correct hash link: named', async () => {
    const r10 = await row(10);
    const forged = { ...r10, nonce: 'forged.2', request_id: 'req-y', mac: '11'.repeat(32) };
    const { id: _id, ...values } = forged;
    const inserted = await store.db
      .insertInto('audit_log')
      .values({ ...values, seq: 11, prev_hash: r10.hash, hash: 'x' })
      .returning('id')
      .executeTakeFirstOrThrow();
    const hash = chainHash(r10.hash!, 11, inserted.id, forged.mac, entryText(forged));
    await store.db.updateTable('audit_log').set({ hash }).where('id', '=', inserted.id).execute();
    expectBad(await verify(), 11, inserted.id, /beyond the chain head/);
  });

  it('reordered: two entries swap places (with their chain fields)', async () => {
    const r3 = await row(3);
    const r7 = await row(7);
    await store.db.updateTable('audit_log').set({ seq: -7 }).where('id', '=', r7.id).execute();
    await store.db.updateTable('audit_log').set({ seq: 7 }).where('id', '=', r3.id).execute();
    await store.db.updateTable('audit_log').set({ seq: 3 }).where('id', '=', r7.id).execute();
    expectBad(await verify(), 3, r7.id, /prev_hash|hash/);
  });

  it('reordered: two entries swap contents, chain fields left in place', async () => {
    const r3 = await row(3);
    const r7 = await row(7);
    const content = (r: typeof r3) => ({
      at: r.at,
      actor: r.actor,
      action: r.action,
      subject_id: r.subject_id,
      collection: r.collection,
      record_id: r.record_id,
      fields: r.fields,
      purpose: r.purpose,
      outcome: r.outcome,
      request_id: r.request_id,
      nonce: `${r.nonce}~`,
      mac: r.mac,
    });
    await store.db.updateTable('audit_log').set(content(r7)).where('id', '=', r3.id).execute();
    await store.db
      .updateTable('audit_log')
      .set({ ...content(r3), nonce: r3.nonce })
      .where('id', '=', r7.id)
      .execute();
    await store.db.updateTable('audit_log').set({ nonce: r7.nonce }).where('id', '=', r3.id).execute();
    expectBad(await verify(), 3, r3.id, /hash/);
  });

  it('a checkpoint with a forged signature is named', async () => {
    const r5 = await row(5);
    const attacker = generateKeyPairSync('ed25519');
    const cp = await store.db.selectFrom('audit_checkpoints').selectAll().where('seq', '=', 5).executeTakeFirstOrThrow();
    const signature = signCheckpoint(attacker.privateKey, { seq: 5, hash: cp.hash, key_id: cp.key_id, at: cp.at });
    await store.db.updateTable('audit_checkpoints').set({ signature }).where('seq', '=', 5).execute();
    expectBad(await verify(), 5, r5.id, /signature/);
  });

  it('a checkpoint moved to another hash is named', async () => {
    const r10 = await row(10);
    await store.db.updateTable('audit_checkpoints').set({ hash: 'f'.repeat(64) }).where('seq', '=', 10).execute();
    expectBad(await verify(), 10, r10.id, /checkpoint/);
  });

  it('truncated tail: later entries removed while the head still records them', async () => {
    await store.db.deleteFrom('audit_log').where('seq', '>', 5).execute();
    expectBad(await verify(), 6, 0, /after seq 5 are missing/);
    await store.db.deleteFrom('audit_checkpoints').where('seq', '>', 5).execute();
    expectBad(await verify(), 6, 0, /after seq 5 are missing: the chain head is at seq 10/);
  });

  it('truncated tail: entries removed and the head wound back, a later checkpoint left', async () => {
    const r5 = await row(5);
    await store.db.deleteFrom('audit_log').where('seq', '>', 5).execute();
    await store.db.updateTable('audit_head').set({ seq: 5, hash: r5.hash! }).where('id', '=', 1).execute();
    expectBad(await verify(), 6, 0, /after seq 5 are missing: a signed checkpoint exists for seq 10/);
  });

  it('truncated tail with every trace removed: caught by an anchor kept outside the database', async () => {
    const ok = await verify();
    if (!ok.ok) throw new Error('expected an intact log');
    const r5 = await row(5);
    await store.db.deleteFrom('audit_log').where('seq', '>', 5).execute();
    await store.db.deleteFrom('audit_checkpoints').where('seq', '>', 5).execute();
    await store.db.updateTable('audit_head').set({ seq: 5, hash: r5.hash! }).where('id', '=', 1).execute();
    expectBad(await verify(ok.head), 6, 0, /anchor/);
  });

  /** What `custos audit verify` checks for entries written since the chain: admitted first, then the tree. */
  async function verifyTree() {
    await log.chainPending();
    return verifyAuditTree({ db: store.db, keys });
  }

  it('forged: an entry appended with a wrong MAC key is refused by the tree builder, named, and left as written', async () => {
    const outsider = testAuditLog(store, testAuditKeys());
    await outsider.append(sampleEntry(50));
    const forged = await store.db.selectFrom('audit_log').select('id').where('seq', 'is', null).executeTakeFirstOrThrow();
    await log.append(sampleEntry(51));
    expect(await log.chainPending()).toBe(1);
    expect(await verifyAuditTree({ db: store.db, keys })).toMatchObject({ ok: false, entryId: forged.id, reason: expect.stringMatching(/refused \(mac\)/) });
    // Written once: the builder records its refusal beside the entry, never in it.
    const after = await store.db.selectFrom('audit_log').select(['seq', 'rejected', 'hash']).where('id', '=', forged.id).executeTakeFirstOrThrow();
    expect(after).toEqual({ seq: null, rejected: null, hash: null });
    await outsider.stop();
  });

  it('edited while waiting: an entry changed before the builder admitted it is refused and named', async () => {
    await log.append(sampleEntry(60));
    const waiting = await store.db.selectFrom('audit_log').select('id').where('seq', 'is', null).executeTakeFirstOrThrow();
    await store.db.updateTable('audit_log').set({ outcome: 'denied' }).where('id', '=', waiting.id).execute();
    expect(await verifyTree()).toMatchObject({ ok: false, entryId: waiting.id, reason: expect.stringMatching(/refused \(mac\)/) });
  });

  it('replay: the database refuses a copied entry; with its unique index dropped, verify names the copy', async () => {
    const r3 = await row(3);
    const { id: _id, ...copy } = { ...r3, seq: null, prev_hash: null, hash: null };
    await expect(store.db.insertInto('audit_log').values(copy).execute()).rejects.toThrow();
    await sql`DROP INDEX audit_log_nonce`.execute(store.db);
    const replayed = await store.db.insertInto('audit_log').values(copy).returning('id').executeTakeFirstOrThrow();
    expect(await verifyTree()).toMatchObject({ ok: false, entryId: replayed.id, reason: expect.stringMatching(/replayed/) });
  });

  it('replay of an entry written since the chain, with the unique index dropped: verify names the copy', async () => {
    await sql`DROP INDEX audit_log_nonce`.execute(store.db);
    await log.append(sampleEntry(70));
    await log.chainPending();
    const fresh = await store.db.selectFrom('audit_log').selectAll().where('seq', 'is', null).orderBy('id', 'desc').executeTakeFirstOrThrow();
    const { id: _fid, ...freshCopy } = fresh;
    const copied = await store.db.insertInto('audit_log').values(freshCopy).returning('id').executeTakeFirstOrThrow();
    expect(await verifyTree()).toMatchObject({ ok: false, entryId: copied.id, reason: expect.stringMatching(/replayed/) });
  });
});
