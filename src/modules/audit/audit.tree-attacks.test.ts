/**
 * Attacks on the audit log's Merkle tree (docs/adr/0004-audit-merkle-log.md) by someone who can
 * change the database but holds neither the audit MAC key nor the signing key, and one by a key
 * holder who rewrites history (a fork), caught only by a head kept outside the database.
 * Each changes the database once and checks that verification of the tree fails.
 */
import { randomBytes } from 'node:crypto';
import { sql } from 'kysely';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { Store } from '../../store/database.ts';
import { testStore } from '../../../test/support/store.ts';
import { entryMac, entryText } from './canonical.ts';
import type { AuditLog } from './service.ts';
import { sampleEntry, testAuditKeys, testAuditLog } from './testing.ts';
import { latestHead } from './tree-store.ts';
import { verifyAuditTree, type TreeVerifyResult } from './verify-tree.ts';
import type { SignedTreeHead } from './tree-head.ts';

let store: Awaited<ReturnType<typeof testStore>>;
const keys = testAuditKeys();
let log: AuditLog;

/** The tree starts on an empty log (leaf 0), then ten entries in two passes: heads of size 6 and 11. */
beforeEach(async () => {
  store = await testStore();
  log = testAuditLog(store, keys);
  await log.chainPending();
  for (let pass = 0; pass < 2; pass++) {
    for (let i = 0; i < 5; i++) await log.append(sampleEntry(pass * 5 + i));
    await log.chainPending();
  }
});
afterEach(async () => {
  await log.stop().catch(() => undefined);
  await store.close();
});

const verify = (anchor?: SignedTreeHead) => verifyAuditTree({ db: store.db, keys }, anchor);

function expectBad(result: TreeVerifyResult, reason: RegExp): void {
  expect(result.ok).toBe(false);
  if (!result.ok) expect(result.reason).toMatch(reason);
}

async function leafEntry(index: number): Promise<number> {
  const r = await store.db.selectFrom('audit_tree_leaves').select('entry_id').where('leaf_index', '=', index).executeTakeFirstOrThrow();
  return Number(r.entry_id);
}

async function cutTail(fromLeaf: number, heads: boolean): Promise<void> {
  const gone = await store.db.selectFrom('audit_tree_leaves').select('entry_id').where('leaf_index', '>=', fromLeaf).execute();
  await store.db.deleteFrom('audit_tree_leaves').where('leaf_index', '>=', fromLeaf).execute();
  await store.db.deleteFrom('audit_log').where('id', 'in', gone.map((g) => Number(g.entry_id))).execute();
  if (heads) await store.db.deleteFrom('audit_tree_heads').where('tree_size', '>', fromLeaf).execute();
}

describe('audit tree attacks', () => {
  it('an intact log verifies and names the signed head it verified', async () => {
    const result = await verify();
    expect(result).toMatchObject({ ok: true, treeSize: 11, head: { tree_size: 11 } });
    expect(await verify((await latestHead(store.db)) ?? undefined)).toMatchObject({ ok: true });
  });

  it('edited: one column of an admitted entry changed', async () => {
    await store.db.updateTable('audit_log').set({ purpose: 'marketing' }).where('id', '=', await leafEntry(3)).execute();
    expectBad(await verify(), /MAC/);
  });

  it('edited with a leaf hash recomputed (SHA-256 needs no key): the signed root still differs', async () => {
    const a = await leafEntry(2);
    const b = await leafEntry(3);
    // Reordered: two leaves swap their entries and leaf hashes.
    const la = await store.db.selectFrom('audit_tree_leaves').selectAll().where('leaf_index', '=', 2).executeTakeFirstOrThrow();
    const lb = await store.db.selectFrom('audit_tree_leaves').selectAll().where('leaf_index', '=', 3).executeTakeFirstOrThrow();
    await store.db.updateTable('audit_tree_leaves').set({ entry_id: null }).where('leaf_index', '=', 2).execute();
    await store.db.updateTable('audit_tree_leaves').set({ entry_id: a, leaf_hash: la.leaf_hash }).where('leaf_index', '=', 3).execute();
    await store.db.updateTable('audit_tree_leaves').set({ entry_id: b, leaf_hash: lb.leaf_hash }).where('leaf_index', '=', 2).execute();
    expectBad(await verify(), /signed tree head/);
  });

  it('deleted: an admitted entry removed', async () => {
    await store.db.deleteFrom('audit_log').where('id', '=', await leafEntry(4)).execute();
    expectBad(await verify(), /missing/);
  });

  it('deleted: an entry and its leaf removed, later leaves renumbered', async () => {
    const id = await leafEntry(4);
    await store.db.deleteFrom('audit_tree_leaves').where('leaf_index', '=', 4).execute();
    await store.db.deleteFrom('audit_log').where('id', '=', id).execute();
    for (let i = 5; i <= 10; i++) await store.db.updateTable('audit_tree_leaves').set({ leaf_index: i - 1 }).where('leaf_index', '=', i).execute();
    expectBad(await verify(), /signed tree head|cut tail/);
  });

  it('forged: an entry inserted without the MAC key is refused by the builder and named', async () => {
    const forged = log.pendingRow(sampleEntry(99));
    await store.db.insertInto('audit_log').values({ ...forged, mac: entryMac(testAuditKeys().auditMac, entryText(forged)) }).execute();
    await log.chainPending();
    expectBad(await verify(), /refused/);
    const leaves = await store.db.selectFrom('audit_tree_leaves').select('leaf_index').execute();
    expect(leaves).toHaveLength(11);
  });

  it('an entry committed out of id order (PostgreSQL takes ids before commit) is still admitted, once', async () => {
    const top = await store.db.selectFrom('audit_log').select((eb) => eb.fn.max('id').as('m')).executeTakeFirstOrThrow();
    const late = Number(top.m) + 50;
    const early = Number(top.m) + 100;
    // The higher id commits and is admitted first; the lower one commits afterwards.
    await store.db.insertInto('audit_log').values({ ...log.pendingRow(sampleEntry(70)), id: early }).execute();
    await log.chainPending();
    await store.db.insertInto('audit_log').values({ ...log.pendingRow(sampleEntry(71)), id: late }).execute();
    await log.chainPending();
    await log.chainPending();
    const leaves = await store.db.selectFrom('audit_tree_leaves').select(['leaf_index', 'entry_id']).where('entry_id', 'in', [late, early]).orderBy('leaf_index').execute();
    expect(leaves.map((l) => Number(l.entry_id))).toEqual([early, late]);
    expect(await store.db.selectFrom('audit_tree_pending').selectAll().execute()).toEqual([]);
    expect(await verify()).toMatchObject({ ok: true, treeSize: 13, pending: 0 });
  });

  it('inserted: a leaf added for an entry with a forged MAC', async () => {
    const forged = log.pendingRow(sampleEntry(98));
    const { id } = await store.db
      .insertInto('audit_log')
      .values({ ...forged, seq: null, mac: randomBytes(32).toString('hex') })
      .returning('id')
      .executeTakeFirstOrThrow();
    await store.db.insertInto('audit_tree_leaves').values({ leaf_index: 11, entry_id: id, leaf_hash: randomBytes(32).toString('hex') }).execute();
    expectBad(await verify(), /MAC/);
  });

  it('cut tail without an anchor: newest entries and leaves removed, their signed head left', async () => {
    await cutTail(6, false);
    expectBad(await verify(), /cut tail/);
  });

  it('cut tail with an anchor: entries, leaves and heads removed together pass alone, but not against the kept head', async () => {
    const anchor = await latestHead(store.db);
    await cutTail(6, true);
    expect((await verify()).ok).toBe(true);
    expectBad(await verify(anchor ?? undefined), /shorter than the anchor/);
  });

  it('behind the builder: an entry inserted with the queue trigger dropped is named though never admitted', async () => {
    const [trigger] = store.dialect === 'postgres' ? ['DROP TRIGGER audit_log_queue ON audit_log'] : ['DROP TRIGGER audit_log_queue'];
    await sql.raw(trigger!).execute(store.db);
    const outsider = testAuditLog(store, testAuditKeys());
    await outsider.append(sampleEntry(90));
    await outsider.stop();
    await log.chainPending();
    const hidden = await store.db.selectFrom('audit_log').select('id').orderBy('id', 'desc').executeTakeFirstOrThrow();
    expect(await verify()).toMatchObject({ ok: false, entryId: hidden.id, reason: expect.stringMatching(/neither a leaf nor waiting/) });
  });

  it('edited, found by the worker threads: the parallel check names the same leaf and entry as the serial one', async () => {
    for (let i = 0; i < 120; i++) await log.append(sampleEntry(100 + i));
    await log.chainPending();
    const parallel = { database: store.test.database, threads: 2, range: 16 };
    expect(await verifyAuditTree({ db: store.db, keys, parallel })).toMatchObject({ ok: true, treeSize: 131 });
    await store.db.updateTable('audit_log').set({ purpose: 'marketing' }).where('id', '=', await leafEntry(77)).execute();
    const serial = await verify();
    expectBad(serial, /MAC/);
    expect(await verifyAuditTree({ db: store.db, keys, parallel })).toEqual(serial);
  });

  it('forked: a key holder rebuilds the tree on other leaves; a consistency proof from an older head catches it', async () => {
    const older = await store.db.selectFrom('audit_tree_heads').selectAll().where('tree_size', '=', 6).executeTakeFirstOrThrow();
    const anchor: SignedTreeHead = { ...older, tree_size: Number(older.tree_size) };
    // Everything goes, entries too (an entry left outside the tree is named by verify on its own).
    for (const t of ['audit_tree_leaves', 'audit_tree_nodes', 'audit_tree_heads', 'audit_log'] as const) await store.db.deleteFrom(t).execute();
    await store.db.updateTable('audit_tree_lease').set({ legacy_seq: null }).execute();
    await log.chainPending();
    for (let i = 0; i < 6; i++) await log.append(sampleEntry(50 + i));
    await log.chainPending();
    const forked = await verify();
    expect(forked).toMatchObject({ ok: true, treeSize: 7 });
    expectBad(await verify(anchor), /does not extend the anchor/);
  });
});
