import type { Kysely } from 'kysely';
import type { AuditKeys } from '../../crypto/keyring.ts';
import type { Database } from '../../store/schema.ts';
import { checkpointKey, entryText, macMatchesAny } from './canonical.ts';
import { Frontier, leafHash, verifyConsistency } from './merkle.ts';
import { leafOfRow } from './tree-builder.ts';
import { legacyLeaf, treeHeadSignatureValid, type SignedTreeHead } from './tree-head.ts';
import { allHeads, leafRows, legacyHead, legacySeq, proveConsistency } from './tree-store.ts';

export type TreeVerifyResult =
  | { ok: true; treeSize: number; head: SignedTreeHead | null; pending: number }
  | { ok: false; reason: string; leafIndex: number | null; entryId: number | null; head: SignedTreeHead | null };

const PAGE = 1000;

/**
 * A copy of an entry (same nonce, so the same MAC) that a database writer inserted after dropping
 * the unique nonce index. The service never writes two entries with one nonce, so any repeated
 * nonce is a replay: the copy with the highest id is named. One grouped read (the index when it
 * is there).
 */
async function replayedCopy(db: Kysely<Database>): Promise<number | null> {
  const r = await db
    .selectFrom('audit_log')
    .select((eb) => eb.fn.max('id').as('id'))
    .groupBy('nonce')
    .having((eb) => eb.fn.countAll(), '>', 1)
    .limit(1)
    .executeTakeFirst();
  return r === undefined ? null : Number(r.id);
}

/**
 * Recomputes the tree from the entries: every leaf from its entry (MAC checked), leaf 0 from the
 * chained log's checkpoint, the root at every signed head's size (and its signature), no head
 * beyond the leaves, no refused entry. With an anchor (a signed head kept outside the database),
 * checks by an RFC 9162 consistency proof from the stored nodes that the newest head extends it.
 */
export async function verifyAuditTree(deps: { db: Kysely<Database>; keys: AuditKeys }, anchor?: SignedTreeHead): Promise<TreeVerifyResult> {
  const { db, keys } = deps;
  const heads = await allHeads(db);
  const latest = heads.at(-1) ?? null;
  const bad = (reason: string, leafIndex: number | null = null, entryId: number | null = null): TreeVerifyResult => ({ ok: false, reason, leafIndex, entryId, head: latest });
  const byKey = (h: SignedTreeHead) => checkpointKey(keys, h.key_id);
  for (const h of heads) {
    const key = byKey(h);
    if (key === undefined || !treeHeadSignatureValid(key, h)) return bad(`the signed tree head of size ${h.tree_size} does not verify`);
  }
  const headAt = new Map(heads.map((h) => [h.tree_size, h]));
  const frontier = new Frontier(0, []);
  const seq0 = await legacySeq(db);
  for (;;) {
    const rows = await leafRows(db, frontier.size, PAGE);
    for (const r of rows) {
      const index = Number(r.leaf_index);
      if (index !== frontier.size) return bad(`leaf ${frontier.size} is missing`, frontier.size);
      let lh: Buffer;
      if (index === 0) {
        if (r.entry_id !== null) return bad('leaf 0 is not the chained log', 0);
        const legacy = await legacyHead(db, seq0);
        if (legacy === null) return bad('the checkpoint leaf 0 commits to is missing', 0);
        lh = leafHash(legacyLeaf(legacy));
      } else {
        const entryId = r.entry_id === null ? null : Number(r.entry_id);
        if (r.id === null || r.at === null || r.mac === null || r.nonce === null || r.actor === null || r.action === null || r.fields === null || r.outcome === null) {
          return bad('the entry of this leaf is missing (deleted)', index, entryId);
        }
        const row = { ...r, id: Number(r.id), at: r.at, mac: r.mac, nonce: r.nonce, actor: r.actor, action: r.action, fields: r.fields, outcome: r.outcome };
        if (!macMatchesAny(keys, entryText(row), row.mac)) return bad('the entry does not match its MAC (edited or forged)', index, entryId);
        // The column hides an entry from its subject's access log: on a leaf it can only be an edit.
        if (r.rejected !== null) return bad('the entry of this leaf is marked as refused (edited)', index, entryId);
        lh = leafHash(leafOfRow(row));
      }
      if (lh.toString('hex') !== r.leaf_hash) return bad('the leaf does not match its entry', index, r.entry_id === null ? null : Number(r.entry_id));
      frontier.append(lh);
      const h = headAt.get(frontier.size);
      if (h !== undefined && frontier.root().toString('hex') !== h.root_hash) {
        return bad(`the leaves do not hash to the signed tree head of size ${h.tree_size} (edited, reordered, inserted or removed)`, index, r.entry_id === null ? null : Number(r.entry_id));
      }
    }
    if (rows.length < PAGE) break;
  }
  if (latest !== null && latest.tree_size > frontier.size) return bad(`a signed tree head covers ${latest.tree_size} leaves but ${frontier.size} remain (cut tail)`, frontier.size);
  const refused = await db.selectFrom('audit_tree_refused').select(['entry_id', 'reason']).orderBy('entry_id').limit(1).executeTakeFirst();
  if (refused !== undefined) return bad(`an entry was refused (${refused.reason}): not written by this service`, null, Number(refused.entry_id));
  const replay = await replayedCopy(db);
  if (replay !== null) return bad('an entry is a replayed copy of another (same nonce)', null, replay);
  if (anchor !== undefined) {
    const key = byKey(anchor);
    if (key === undefined || !treeHeadSignatureValid(key, anchor)) return bad('the anchor is not a tree head signed by this service');
    if (latest === null || anchor.tree_size > latest.tree_size) return bad(`the log is shorter than the anchor (${anchor.tree_size} leaves): its tail was cut`);
    const proof = (await proveConsistency(db, anchor.tree_size, latest.tree_size)).map((h) => Buffer.from(h, 'hex'));
    const ok = verifyConsistency(anchor.tree_size, latest.tree_size, Buffer.from(anchor.root_hash, 'hex'), Buffer.from(latest.root_hash, 'hex'), proof);
    if (!ok) return bad('the log does not extend the anchor (consistency proof fails): it was rewritten or forked');
  }
  // Entries not yet leaves (nor refused, nor covered by leaf 0): each must wait in the builder's
  // queue with a valid MAC. One written behind the builder's back (the queue's trigger dropped) is named.
  let pending = 0;
  for (let after = Number.MIN_SAFE_INTEGER; ; ) {
    const page = await db
      .selectFrom('audit_log as l')
      .leftJoin('audit_tree_pending as p', 'p.entry_id', 'l.id')
      .selectAll('l')
      .select('p.entry_id as queued')
      .where('l.id', '>', after)
      .where((eb) => eb.not(eb.exists(eb.selectFrom('audit_tree_leaves as t').select('t.leaf_index').whereRef('t.entry_id', '=', 'l.id'))))
      .where((eb) => eb.not(eb.exists(eb.selectFrom('audit_tree_refused as r').select('r.entry_id').whereRef('r.entry_id', '=', 'l.id'))))
      .where((eb) => eb.or([eb('l.seq', 'is', null), eb('l.seq', '>', seq0)]))
      .orderBy('l.id')
      .limit(PAGE)
      .execute();
    for (const r of page) {
      const id = Number(r.id);
      if (r.queued === null) return bad('the entry is neither a leaf nor waiting for the tree builder (inserted behind its back)', null, id);
      if (!macMatchesAny(keys, entryText(r), r.mac)) return bad('the entry waiting for the tree builder does not match its MAC (edited or forged)', null, id);
      if (r.rejected !== null) return bad('the entry waiting for the tree builder is marked as refused (edited)', null, id);
      pending += 1;
    }
    if (page.length < PAGE) break;
    after = Number(page.at(-1)!.id);
  }
  return { ok: true, treeSize: frontier.size, head: latest, pending };
}
