import type { Kysely, Transaction } from 'kysely';
import type { AuditKeys } from '../../crypto/keyring.ts';
import { newerServiceKeyExists } from '../../crypto/service-keys.ts';
import type { Clock } from '../../kernel/clock.ts';
import type { Database } from '../../store/schema.ts';
import { entryText, macMatchesAny, type EntryColumns } from './canonical.ts';
import { Frontier, leafHash, type StoredNode } from './merkle.ts';
import { entryLeaf, legacyLeaf, signTreeHead, withheldHash, type SignedTreeHead } from './tree-head.ts';
import { fenceLease, legacyHead, loadNodes, takeLease, treeSize } from './tree-store.ts';
import { verifyAuditLog } from './verify.ts';

export interface TreeBuildDeps {
  readonly db: Kysely<Database>;
  readonly keys: AuditKeys;
  readonly clock: Clock;
  /** Names this builder in the lease. */
  readonly holder: string;
  /** How long the lease lasts without a pass renewing it. */
  readonly leaseMs: number;
  /** Most entries admitted in one transaction. */
  readonly batch: number;
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

type Queued = { queued: number; decided: number | null } & { [K in keyof StoredRow]: StoredRow[K] | null };

/**
 * The oldest entries of the queue (audit_tree_pending, filled by a trigger on every insert into
 * audit_log), in id order, each with its entry (NULLs when the entry is gone) and whether it is
 * already a leaf or refused. Reads only the queue, however long the log is.
 */
async function candidates(tx: Transaction<Database>, limit: number): Promise<Queued[]> {
  return (await tx
    .selectFrom('audit_tree_pending as p')
    .leftJoin('audit_log as l', 'l.id', 'p.entry_id')
    .select('p.entry_id as queued')
    .selectAll('l')
    .select((eb) =>
      eb
        .case()
        .when(eb.exists(eb.selectFrom('audit_tree_leaves as t').select('t.leaf_index').whereRef('t.entry_id', '=', 'p.entry_id')))
        .then(1)
        .when(eb.exists(eb.selectFrom('audit_tree_refused as r').select('r.entry_id').whereRef('r.entry_id', '=', 'p.entry_id')))
        .then(1)
        .else(null)
        .end()
        .as('decided'),
    )
    .orderBy('p.entry_id')
    .limit(limit)
    .execute()) as Queued[];
}

/** Takes decided entries off the queue (by id: on PostgreSQL a lower id may have been queued meanwhile). */
async function dequeue(tx: Transaction<Database>, ids: readonly number[]): Promise<void> {
  for (let i = 0; i < ids.length; i += 500) await tx.deleteFrom('audit_tree_pending').where('entry_id', 'in', ids.slice(i, i + 500)).execute();
}

/** The leaf of a stored entry (tree-head.ts defines its bytes). */
export function leafOfRow(r: EntryColumns & { id: number; mac: string }): Buffer {
  return entryLeaf(
    { id: Number(r.id), at: r.at, actor: r.actor, action: r.action, subject_id: r.subject_id, collection: r.collection, record_id: r.record_id, fields: r.fields, purpose: r.purpose, outcome: r.outcome },
    withheldHash(r),
  );
}

async function insertChunks<T extends keyof Database>(tx: Transaction<Database>, table: T, rows: readonly Record<string, unknown>[]): Promise<void> {
  for (let i = 0; i < rows.length; i += 300) {
    // Every caller passes rows of the table it names.
    await tx.insertInto(table).values(rows.slice(i, i + 300) as never).execute();
  }
}

/**
 * One pass of the tree builder, in one transaction that also checks this builder still holds the
 * lease: admit the oldest entries not yet decided (the queue audit_tree_pending), in id order,
 * taking them off the queue in the same transaction, each only if its MAC verifies (a
 * copy of a nonce already in the batch, or a row the chainer refused, is refused), append them as
 * leaves, store every node they complete, and sign a tree head over the new size. On a new tree,
 * leaf 0 commits to the hash-chained log before it, once that log verifies. A crash before the
 * commit leaves nothing behind; the next pass starts again from the stored tree.
 */
export async function buildOnce(deps: TreeBuildDeps): Promise<TreeBuildReport> {
  const { db, keys, clock } = deps;
  const none: TreeBuildReport = { leased: false, admitted: 0, refused: [], processed: 0, head: null };
  if (!(await takeLease(db, deps.holder, clock.now().getTime(), deps.leaseMs))) return none;
  if ((await treeSize(db)) === 0) {
    const chain = await verifyAuditLog({ db, keys });
    if (!chain.ok) {
      // Entries MAC-ed under a key version newer than this process's: a process holding it starts the tree.
      if (keys.auditMacVersion !== undefined && (await newerServiceKeyExists(db, 'audit-mac', keys.auditMacVersion))) return none;
      throw new Error(`the chained audit log does not verify (${chain.reason}); the tree is not started`);
    }
  }
  return db.transaction().execute(async (tx) => {
      const lease = await fenceLease(tx, deps.holder);
      if (lease === null) return none;
      const size = await treeSize(tx);
      const frontier = size === 0 ? new Frontier(0, []) : Frontier.load(size, await loadNodes(tx, Frontier.keys(size)));
      const nodes: StoredNode[] = [];
      const leaves: { leaf_index: number; entry_id: number | null; leaf_hash: string }[] = [];
      let legacySeq = lease.legacySeq ?? 0;
      if (size === 0) {
        const head = await tx.selectFrom('audit_head').select(['seq']).where('id', '=', 1).executeTakeFirstOrThrow();
        legacySeq = Number(head.seq);
        const legacy = await legacyHead(tx, legacySeq);
        if (legacy === null) throw new Error('the chained audit log has no checkpoint at its head; the tree is not started');
        const lh = leafHash(legacyLeaf(legacy));
        nodes.push(...frontier.append(lh));
        leaves.push({ leaf_index: 0, entry_id: null, leaf_hash: lh.toString('hex') });
        await tx.updateTable('audit_tree_lease').set({ legacy_seq: legacySeq }).where('id', '=', 1).execute();
      }
      const queue = await candidates(tx, deps.batch);
      const refused: { id: number; reason: string }[] = [];
      const nonces = new Set<string>();
      const done: number[] = [];
      for (const q of queue) {
        const id = Number(q.queued);
        // Gone before it was decided (the window of ADR 0004), already decided, or covered by leaf 0.
        if (q.id === null || q.decided !== null || (q.seq !== null && Number(q.seq) <= legacySeq)) {
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
        const lh = leafHash(leafOfRow(row));
        nodes.push(...frontier.append(lh));
        leaves.push({ leaf_index: frontier.size - 1, entry_id: id, leaf_hash: lh.toString('hex') });
      }
      const processed = done.length;
      await dequeue(tx, done);
      await insertChunks(tx, 'audit_tree_leaves', leaves);
      await insertChunks(tx, 'audit_tree_nodes', nodes.map((n) => ({ level: n.level, idx: n.index, hash: n.hash.toString('hex') })));
      await insertChunks(tx, 'audit_tree_refused', refused.map((r) => ({ entry_id: r.id, reason: r.reason })));
      let head: SignedTreeHead | null = null;
      if (leaves.length > 0) {
        head = signTreeHead(keys.auditSigning.privateKey, {
          tree_size: frontier.size,
          root_hash: frontier.root().toString('hex'),
          timestamp: clock.now().toISOString(),
          key_id: keys.auditSigning.keyId,
        });
        await tx.insertInto('audit_tree_heads').values(head).execute();
      }
      return { leased: true, admitted: leaves.filter((l) => l.entry_id !== null).length, refused, processed, head };
  });
}

/** Builds until no full batch is left (or another builder holds the lease). */
export async function buildAll(deps: TreeBuildDeps): Promise<TreeBuildReport> {
  const total: TreeBuildReport = { leased: true, admitted: 0, refused: [], processed: 0, head: null };
  for (;;) {
    const pass = await buildOnce(deps);
    if (!pass.leased) return { ...total, leased: total.admitted > 0 };
    total.admitted += pass.admitted;
    total.refused.push(...pass.refused);
    total.processed += pass.processed;
    total.head = pass.head ?? total.head;
    if (pass.processed < deps.batch) return total;
  }
}
