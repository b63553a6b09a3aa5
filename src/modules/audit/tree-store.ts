import { sql, type Kysely, type Transaction } from 'kysely';
import type { Dialect } from '../../store/database.ts';
import type { Database } from '../../store/schema.ts';
import { consistencyProof, inclusionProof, proofNodeKeys, type Hash, type NodeSource } from './merkle.ts';
import { GENESIS_HASH } from './canonical.ts';
import type { LegacyHead, SignedTreeHead } from './tree-head.ts';

type Db = Kysely<Database> | Transaction<Database>;

/**
 * Reads the stored nodes named, as a NodeSource (a missing node is an error, never a guess). A
 * level-0 node is a leaf hash, read from audit_tree_leaves (the builder stores nodes from level 1
 * up; trees built before migration 0024 also hold level 0 in audit_tree_nodes, unread).
 */
export async function loadNodes(db: Db, keys: readonly { level: number; index: number }[]): Promise<NodeSource> {
  const map = new Map<string, Hash>();
  const leaves = keys.filter((k) => k.level === 0).map((k) => k.index);
  const inner = keys.filter((k) => k.level > 0);
  for (let i = 0; i < leaves.length; i += 200) {
    const rows = await db.selectFrom('audit_tree_leaves').select(['leaf_index', 'leaf_hash']).where('leaf_index', 'in', leaves.slice(i, i + 200)).execute();
    for (const r of rows) map.set(`0:${Number(r.leaf_index)}`, Buffer.from(r.leaf_hash, 'hex'));
  }
  for (let i = 0; i < inner.length; i += 200) {
    const chunk = inner.slice(i, i + 200);
    const rows = await db
      .selectFrom('audit_tree_nodes')
      .select(['level', 'idx', 'hash'])
      .where((eb) => eb.or(chunk.map((k) => eb.and([eb('level', '=', k.level), eb('idx', '=', k.index)]))))
      .execute();
    for (const r of rows) map.set(`${r.level}:${Number(r.idx)}`, Buffer.from(r.hash, 'hex'));
  }
  return (level, index) => {
    const h = map.get(`${level}:${index}`);
    if (h === undefined) throw new Error(`audit tree node ${level}:${index} is missing`);
    return h;
  };
}

/** Runs a proof builder over stored nodes: names the nodes it needs, reads them in one pass, builds. */
export async function fromStoredNodes<T>(db: Db, build: (nodes: NodeSource) => T): Promise<T> {
  return build(await loadNodes(db, proofNodeKeys(build)));
}

export async function treeSize(db: Db): Promise<number> {
  const row = await db.selectFrom('audit_tree_leaves').select((eb) => eb.fn.max('leaf_index').as('m')).executeTakeFirst();
  return row?.m === null || row?.m === undefined ? 0 : Number(row.m) + 1;
}

function toHead(r: Database['audit_tree_heads']): SignedTreeHead {
  return { tree_size: Number(r.tree_size), root_hash: r.root_hash, timestamp: r.timestamp, key_id: r.key_id, signature: r.signature };
}

export async function latestHead(db: Db): Promise<SignedTreeHead | null> {
  const r = await db.selectFrom('audit_tree_heads').selectAll().orderBy('tree_size', 'desc').limit(1).executeTakeFirst();
  return r === undefined ? null : toHead(r);
}

export async function allHeads(db: Db): Promise<SignedTreeHead[]> {
  return (await db.selectFrom('audit_tree_heads').selectAll().orderBy('tree_size').execute()).map(toHead);
}

export interface InclusionProofView {
  leaf_index: number;
  tree_size: number;
  /** Hex hashes, RFC 9162 §2.1.3 order. */
  inclusion_path: string[];
}

/** Leaf index of each entry admitted to the tree. */
export async function leafIndexes(db: Db, entryIds: readonly number[]): Promise<Map<number, number>> {
  const out = new Map<number, number>();
  if (entryIds.length === 0) return out;
  const rows = await db.selectFrom('audit_tree_leaves').select(['entry_id', 'leaf_index']).where('entry_id', 'in', [...entryIds]).execute();
  for (const r of rows) if (r.entry_id !== null) out.set(Number(r.entry_id), Number(r.leaf_index));
  return out;
}

/** The inclusion proof of a leaf in the tree of `head`, or null when the head does not cover it yet. */
export async function proveLeaf(db: Db, leafIndex: number | undefined, head: SignedTreeHead | null): Promise<InclusionProofView | null> {
  if (leafIndex === undefined || head === null || leafIndex >= head.tree_size) return null;
  const path = await fromStoredNodes(db, (nodes) => inclusionProof(nodes, leafIndex, head.tree_size));
  return { leaf_index: leafIndex, tree_size: head.tree_size, inclusion_path: path.map((h) => h.toString('hex')) };
}

/** The consistency proof (hex) between two sizes no larger than `limit` (the newest signed head). */
export async function proveConsistency(db: Db, first: number, second: number): Promise<string[]> {
  const path = await fromStoredNodes(db, (nodes) => consistencyProof(nodes, first, second));
  return path.map((h) => h.toString('hex'));
}

/**
 * Inside the builder's transaction, as its first statement: takes or renews the lease (free,
 * expired, or already `holder`'s) until `now + ms`. The row stays locked until the transaction
 * ends (PostgreSQL's row lock, SQLite's write lock), so no other builder can take it over midway:
 * this is the fence. Null when another builder holds it.
 */
export async function takeLeaseIn(tx: Db, holder: string, nowMs: number, ms: number): Promise<{ legacySeq: number | null } | null> {
  const r = await sql<{ legacy_seq: number | null }>`
    UPDATE audit_tree_lease SET holder = ${holder}, expires_ms = ${nowMs + ms}
    WHERE id = 1 AND (holder = ${holder} OR expires_ms < ${nowMs}) RETURNING legacy_seq`.execute(tx);
  const row = r.rows[0];
  if (row === undefined) return null;
  return { legacySeq: row.legacy_seq === null ? null : Number(row.legacy_seq) };
}

/** Size and time of the newest signed head (null before the first). */
export async function headMark(db: Db): Promise<{ tree_size: number; timestamp: string } | null> {
  const r = await sql<{ tree_size: number; timestamp: string }>`SELECT tree_size, timestamp FROM audit_tree_heads ORDER BY tree_size DESC LIMIT 1`.execute(db);
  const row = r.rows[0];
  return row === undefined ? null : { tree_size: Number(row.tree_size), timestamp: row.timestamp };
}

export interface TreeAppend {
  /** Entries decided in this pass: taken off the queue. */
  readonly done: readonly number[];
  readonly leaves: readonly { leaf_index: number; entry_id: number | null; leaf_hash: string }[];
  readonly nodes: readonly { level: number; idx: number; hash: string }[];
  readonly refused: readonly { id: number; reason: string }[];
}

/**
 * Writes one builder pass with one statement per table, whatever the batch: SQLite reads the rows
 * from one JSON array (json_each), PostgreSQL from one array per column (unnest), so the statement
 * text and its parameter count do not grow with the batch.
 */
export async function appendTree(tx: Db, dialect: Dialect, a: TreeAppend): Promise<void> {
  const pg = dialect === 'postgres';
  if (a.done.length > 0) {
    await (pg
      ? sql`DELETE FROM audit_tree_pending WHERE entry_id = ANY(${a.done}::bigint[])`
      : sql`DELETE FROM audit_tree_pending WHERE entry_id IN (SELECT value FROM json_each(${JSON.stringify(a.done)}))`
    ).execute(tx);
  }
  if (a.leaves.length > 0) {
    await (pg
      ? sql`INSERT INTO audit_tree_leaves (leaf_index, entry_id, leaf_hash) SELECT * FROM unnest(${a.leaves.map((l) => l.leaf_index)}::bigint[], ${a.leaves.map((l) => l.entry_id)}::bigint[], ${a.leaves.map((l) => l.leaf_hash)}::text[])`
      : sql`INSERT INTO audit_tree_leaves (leaf_index, entry_id, leaf_hash) SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(${JSON.stringify(a.leaves.map((l) => [l.leaf_index, l.entry_id, l.leaf_hash]))})`
    ).execute(tx);
  }
  if (a.nodes.length > 0) {
    await (pg
      ? sql`INSERT INTO audit_tree_nodes (level, idx, hash) SELECT * FROM unnest(${a.nodes.map((n) => n.level)}::integer[], ${a.nodes.map((n) => n.idx)}::bigint[], ${a.nodes.map((n) => n.hash)}::text[])`
      : sql`INSERT INTO audit_tree_nodes (level, idx, hash) SELECT value ->> 0, value ->> 1, value ->> 2 FROM json_each(${JSON.stringify(a.nodes.map((n) => [n.level, n.idx, n.hash]))})`
    ).execute(tx);
  }
  if (a.refused.length > 0) {
    await (pg
      ? sql`INSERT INTO audit_tree_refused (entry_id, reason) SELECT * FROM unnest(${a.refused.map((r) => r.id)}::bigint[], ${a.refused.map((r) => r.reason)}::text[])`
      : sql`INSERT INTO audit_tree_refused (entry_id, reason) SELECT value ->> 0, value ->> 1 FROM json_each(${JSON.stringify(a.refused.map((r) => [r.id, r.reason]))})`
    ).execute(tx);
  }
}

/** Cheap probe that lets an idle builder skip its pass: entries wait in the queue, or leaves wait for a signed head. */
export async function treeWorkWaiting(db: Db): Promise<boolean> {
  const r = await sql<{ w: number }>`
    SELECT CASE WHEN EXISTS (SELECT 1 FROM audit_tree_pending)
      OR COALESCE((SELECT max(leaf_index) + 1 FROM audit_tree_leaves), 0) > COALESCE((SELECT max(tree_size) FROM audit_tree_heads), 0)
    THEN 1 ELSE 0 END AS w`.execute(db);
  return Number(r.rows[0]?.w ?? 0) === 1;
}

export async function releaseLease(db: Db, holder: string): Promise<void> {
  await db.updateTable('audit_tree_lease').set({ expires_ms: 0 }).where('id', '=', 1).where('holder', '=', holder).execute();
}

/** What leaf 0 commits to: the chained log up to `seq` and its signed checkpoint (none for an empty chain). */
export async function legacyHead(db: Db, seq: number): Promise<LegacyHead | null> {
  if (seq === 0) return { seq: 0, hash: GENESIS_HASH, checkpoint: null };
  const cp = await db.selectFrom('audit_checkpoints').selectAll().where('seq', '=', seq).executeTakeFirst();
  if (cp === undefined) return null;
  return { seq, hash: cp.hash, checkpoint: { signature: cp.signature, key_id: cp.key_id, at: cp.at } };
}

/** The chain seq leaf 0 commits to (0 before the tree starts). */
export async function legacySeq(db: Db): Promise<number> {
  const r = await db.selectFrom('audit_tree_lease').select('legacy_seq').where('id', '=', 1).executeTakeFirst();
  return Number(r?.legacy_seq ?? 0);
}

/** Leaves from `from` on (below `to` when given), in order, each with its entry's columns (NULL when the entry is gone). */
export async function leafRows(db: Db, from: number, limit: number, to?: number) {
  let q = db
    .selectFrom('audit_tree_leaves as t')
    .leftJoin('audit_log as l', 'l.id', 't.entry_id')
    .select(['t.leaf_index', 't.entry_id', 't.leaf_hash'])
    .select(['l.id', 'l.at', 'l.actor', 'l.action', 'l.subject_id', 'l.collection', 'l.record_id', 'l.fields', 'l.purpose', 'l.outcome', 'l.request_id', 'l.nonce', 'l.mac', 'l.record_version', 'l.rejected'])
    .where('t.leaf_index', '>=', from);
  if (to !== undefined) q = q.where('t.leaf_index', '<', to);
  return q.orderBy('t.leaf_index').limit(limit).execute();
}
