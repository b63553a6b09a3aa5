import { sql, type Kysely, type Transaction } from 'kysely';
import type { AuditKeys } from '../../crypto/keyring.ts';
import { newerServiceKeyExists } from '../../crypto/service-keys.ts';
import type { Clock } from '../../kernel/clock.ts';
import type { Dialect } from '../../store/database.ts';
import type { Database } from '../../store/schema.ts';
import { entryText, macMatchesAny, type EntryColumns } from './canonical.ts';
import { Frontier, leafHash } from './merkle.ts';
import { entryLeaf, legacyLeaf, signTreeHead, withheldHash, type SignedTreeHead } from './tree-head.ts';
import { appendTree, headMark, legacyHead, loadNodes, takeLeaseIn, treeSize } from './tree-store.ts';
import { verifyAuditLog } from './verify.ts';

export interface TreeBuildDeps {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  readonly keys: AuditKeys;
  readonly clock: Clock;
  /** Names this builder in the lease. */
  readonly holder: string;
  /** How long the lease lasts without a pass renewing it. */
  readonly leaseMs: number;
  /** Most entries admitted in one transaction. */
  readonly batch: number;
  /**
   * When a tree head is signed (docs/adr/0004-audit-merkle-log.md "Signed heads"): once the newest
   * head is `headIntervalMs` old, or `headEntries` leaves lie beyond it, or always (`force`: the
   * CLI, a stopping process). Without it: every pass that appends signs one.
   */
  readonly heads?: { readonly intervalMs: number; readonly entries: number; readonly force: boolean } | undefined;
}

export interface TreeBuildReport {
  /** False when another builder holds the lease. */
  leased: boolean;
  admitted: number;
  refused: { id: number; reason: string }[];
  /** Entries looked at (admitted or refused). */
  processed: number;
  head: SignedTreeHead | null;
}

type StoredRow = Database['audit_log'] & { id: number };

type Queued = { queued: number; decided: number } & { [K in keyof StoredRow]: StoredRow[K] | null };

/**
 * The oldest entries of the queue (audit_tree_pending, filled by a trigger on every insert into
 * audit_log), in id order, each with its entry (NULLs when the entry is gone) and whether it is
 * already a leaf or refused. One statement; reads only the queue, however long the log is.
 */
async function candidates(tx: Transaction<Database>, limit: number): Promise<Queued[]> {
  const r = await sql<Queued>`
    SELECT p.entry_id AS queued, l.*,
      CASE WHEN t.leaf_index IS NOT NULL OR r.entry_id IS NOT NULL THEN 1 ELSE 0 END AS decided
    FROM audit_tree_pending p
    LEFT JOIN audit_log l ON l.id = p.entry_id
    LEFT JOIN audit_tree_leaves t ON t.entry_id = p.entry_id
    LEFT JOIN audit_tree_refused r ON r.entry_id = p.entry_id
    ORDER BY p.entry_id LIMIT ${limit}`.execute(tx);
  return r.rows;
}

/** The leaf of a stored entry (tree-head.ts defines its bytes). */
export function leafOfRow(r: EntryColumns & { id: number; mac: string }): Buffer {
  return entryLeaf(
    { id: Number(r.id), at: r.at, actor: r.actor, action: r.action, subject_id: r.subject_id, collection: r.collection, record_id: r.record_id, fields: r.fields, purpose: r.purpose, outcome: r.outcome },
    withheldHash(r),
  );
}

const NONE: TreeBuildReport = { leased: false, admitted: 0, refused: [], processed: 0, head: null };

/**
 * One pass of the tree builder, in one transaction that starts by taking (or renewing) the
 * builder's lease with one statement, so a builder whose lease was taken over writes nothing:
 * admit the oldest entries not yet decided (the queue audit_tree_pending), in id order, taking
 * them off the queue in the same transaction, each only if its MAC verifies (a copy of a nonce
 * already in the batch, or a row the chainer of earlier versions refused, is refused), append them
 * as leaves, store every node they complete (one statement per table), and sign a tree head over
 * the new size when one is due (`heads`). Entries are only read: the builder never updates an
 * entry. On a new tree, leaf 0 commits to the hash-chained log of earlier versions, once that log
 * verifies. A crash before the commit leaves nothing behind; the next pass starts again from the
 * stored tree.
 */
export async function buildOnce(deps: TreeBuildDeps): Promise<TreeBuildReport> {
  const first = await pass(deps, false);
  if (first !== 'verify-chain') return first;
  const chain = await verifyAuditLog({ db: deps.db, keys: deps.keys });
  if (!chain.ok) {
    // Entries MAC-ed under a key version newer than this process's: a process holding it starts the tree.
    if (deps.keys.auditMacVersion !== undefined && (await newerServiceKeyExists(deps.db, 'audit-mac', deps.keys.auditMacVersion))) return NONE;
    throw new Error(`the chained audit log does not verify (${chain.reason}); the tree is not started`);
  }
  const second = await pass(deps, true);
  return second === 'verify-chain' ? NONE : second;
}

function pass(deps: TreeBuildDeps, chainVerified: boolean): Promise<TreeBuildReport | 'verify-chain'> {
  const { db, dialect, keys, clock } = deps;
  return db.transaction().execute(async (tx) => {
    const now = clock.now();
    const lease = await takeLeaseIn(tx, deps.holder, now.getTime(), deps.leaseMs);
    if (lease === null) return NONE;
    const size = await treeSize(tx);
    if (size === 0 && !chainVerified) return 'verify-chain';
    const frontier = size === 0 ? new Frontier(0, []) : Frontier.load(size, await loadNodes(tx, Frontier.keys(size)));
    const leaves: { leaf_index: number; entry_id: number | null; leaf_hash: string }[] = [];
    const nodes: { level: number; idx: number; hash: string }[] = [];
    const append = (lh: Buffer, entryId: number | null) => {
      // Level 0 is the leaf hash, stored once, in audit_tree_leaves.
      for (const n of frontier.append(lh)) if (n.level > 0) nodes.push({ level: n.level, idx: n.index, hash: n.hash.toString('hex') });
      leaves.push({ leaf_index: frontier.size - 1, entry_id: entryId, leaf_hash: lh.toString('hex') });
    };
    let legacySeq = lease.legacySeq ?? 0;
    if (size === 0) {
      const head = await tx.selectFrom('audit_head').select(['seq']).where('id', '=', 1).executeTakeFirstOrThrow();
      legacySeq = Number(head.seq);
      const legacy = await legacyHead(tx, legacySeq);
      if (legacy === null) throw new Error('the chained audit log has no checkpoint at its head; the tree is not started');
      append(leafHash(legacyLeaf(legacy)), null);
      await tx.updateTable('audit_tree_lease').set({ legacy_seq: legacySeq }).where('id', '=', 1).execute();
    }
    const queue = await candidates(tx, deps.batch);
    const refused: { id: number; reason: string }[] = [];
    const nonces = new Set<string>();
    const done: number[] = [];
    for (const q of queue) {
      const id = Number(q.queued);
      // Gone before it was decided (the window of ADR 0004), already decided, or covered by leaf 0.
      if (q.id === null || Number(q.decided) !== 0 || (q.seq !== null && Number(q.seq) <= legacySeq)) {
        done.push(id);
        continue;
      }
      const row = q as StoredRow;
      if (!macMatchesAny(keys, entryText(row), row.mac)) {
        // Written under a MAC key version newer than this process knows: wait for a process that has it.
        if (keys.auditMacVersion !== undefined && (await newerServiceKeyExists(tx, 'audit-mac', keys.auditMacVersion))) break;
        done.push(id);
        refused.push({ id, reason: 'mac' });
        continue;
      }
      done.push(id);
      if (row.rejected !== null || nonces.has(row.nonce)) {
        refused.push({ id, reason: row.rejected ?? 'duplicate' });
        continue;
      }
      nonces.add(row.nonce);
      append(leafHash(leafOfRow(row)), id);
    }
    await appendTree(tx, dialect, { done, leaves, nodes, refused });
    const last = await headMark(tx);
    let head: SignedTreeHead | null = null;
    const h = deps.heads;
    const beyond = frontier.size - (last?.tree_size ?? 0);
    const due =
      h === undefined
        ? leaves.length > 0
        : beyond > 0 && (h.force || last === null || beyond >= h.entries || now.getTime() - Date.parse(last.timestamp) >= h.intervalMs);
    if (due) {
      head = signTreeHead(keys.auditSigning.privateKey, {
        tree_size: frontier.size,
        root_hash: frontier.root().toString('hex'),
        timestamp: now.toISOString(),
        key_id: keys.auditSigning.keyId,
      });
      await tx.insertInto('audit_tree_heads').values(head).execute();
    }
    return { leased: true, admitted: leaves.filter((l) => l.entry_id !== null).length, refused, processed: done.length, head };
  });
}

/** Builds until no full batch is left (or another builder holds the lease). */
export async function buildAll(deps: TreeBuildDeps): Promise<TreeBuildReport> {
  const total: TreeBuildReport = { leased: true, admitted: 0, refused: [], processed: 0, head: null };
  for (;;) {
    const more = await buildOnce(deps);
    if (!more.leased) return { ...total, leased: total.admitted > 0 };
    total.admitted += more.admitted;
    total.refused.push(...more.refused);
    total.processed += more.processed;
    total.head = more.head ?? total.head;
    if (more.processed < deps.batch) return total;
  }
}
