import type { Kysely } from 'kysely';
import type { AuditKeys } from '../../crypto/keyring.ts';
import type { Database } from '../../store/schema.ts';
import { checkpointKey, entryText, macMatchesAny } from './canonical.ts';
import { Worker } from 'node:worker_threads';
import type { Config } from '../../config/config.ts';
import { Frontier, HASH_SIZE, leafHash, verifyConsistency } from './merkle.ts';
import { checkLeaves, type LeafFault } from './verify-leaves.ts';
import type { VerifyReply, VerifyRequest, WorkerDatabase } from './verify-worker.ts';
import { legacyLeaf, treeHeadSignatureValid, type SignedTreeHead } from './tree-head.ts';
import { allHeads, leafRows, legacyHead, legacySeq, proveConsistency, treeSize } from './tree-store.ts';

export type TreeVerifyResult =
  | { ok: true; treeSize: number; head: SignedTreeHead | null; pending: number }
  | { ok: false; reason: string; leafIndex: number | null; entryId: number | null; head: SignedTreeHead | null };

const PAGE = 1000;
/** Leaves per range handed to a checker (a multiple of the page). */
const RANGE = 50_000;

type OnRange = (hashes: Buffer) => boolean;

/** Worker threads for the leaves, each with its own connection to `database`; `range`: leaves per message (default 50,000). */
export interface Parallel {
  readonly database: Config['database'];
  readonly threads: number;
  readonly range?: number;
}

/** Checks the leaves 1…size-1 range by range in this thread. */
async function checkHere(db: Kysely<Database>, keys: AuditKeys, size: number, onRange: OnRange): Promise<LeafFault | null> {
  for (let from = 1; from < size; from += RANGE) {
    const r = await checkLeaves(db, keys, from, Math.min(size, from + RANGE));
    if ('fault' in r) return r.fault;
    if (!onRange(r.hashes)) return null;
  }
  return null;
}

const EXTENSION = import.meta.url.endsWith('.ts') ? '.ts' : '.js';

/**
 * Checks the leaves 1…size-1 on worker threads (verify-worker.ts), each with its own connection:
 * ranges go to whichever thread is free, and their leaf hashes are appended in order as they
 * arrive. Stops at the first fault.
 */
async function checkInThreads(parallel: Parallel, keys: AuditKeys, size: number, onRange: OnRange): Promise<LeafFault | null> {
  const step = parallel.range ?? RANGE;
  const d = parallel.database;
  const database: WorkerDatabase = d.kind === 'sqlite' ? { kind: 'sqlite', file: d.file } : { kind: 'postgres', url: d.url.reveal(), schema: d.schema };
  const workerKeys = { auditMac: keys.auditMac, auditMacPrevious: keys.auditMacPrevious, auditMacVersion: keys.auditMacVersion, auditSigning: keys.auditSigning, auditSigningPrevious: keys.auditSigningPrevious };
  const workers = Array.from({ length: parallel.threads }, () => new Worker(new URL(`./verify-worker${EXTENSION}`, import.meta.url), { workerData: { database, keys: workerKeys } }));
  const ranges: number[] = [];
  for (let from = 1; from < size; from += step) ranges.push(from);
  const done = new Map<number, Buffer>();
  let nextRange = 0;
  let nextInOrder = 0;
  try {
    return await new Promise<LeafFault | null>((resolve, reject) => {
      const send = (w: Worker) => {
        const from = ranges[nextRange++];
        if (from !== undefined) w.postMessage({ from, to: Math.min(size, from + step) } satisfies VerifyRequest);
      };
      for (const w of workers) {
        w.on('error', reject);
        w.on('message', (m: VerifyReply | { ready: true }) => {
          if ('ready' in m) return send(w);
          if ('error' in m) return reject(new Error(m.error));
          if ('fault' in m) return resolve(m.fault);
          done.set(m.from, Buffer.from(m.hashes));
          send(w);
          for (let from = ranges[nextInOrder]; from !== undefined && done.has(from); from = ranges[nextInOrder]) {
            const hashes = done.get(from)!;
            done.delete(from);
            nextInOrder += 1;
            if (!onRange(hashes)) return resolve(null);
          }
          if (nextInOrder === ranges.length) resolve(null);
        });
      }
    });
  } finally {
    await Promise.all(workers.map((w) => w.terminate()));
  }
}

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
export async function verifyAuditTree(
  deps: {
    db: Kysely<Database>;
    keys: AuditKeys;
    /** Check the leaves on this many worker threads, each with its own connection to `database`. */
    parallel?: Parallel | undefined;
  },
  anchor?: SignedTreeHead,
): Promise<TreeVerifyResult> {
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
  const size = await treeSize(db);
  if (size > 0) {
    const [r] = await leafRows(db, 0, 1);
    if (r === undefined || Number(r.leaf_index) !== 0) return bad('leaf 0 is missing', 0);
    if (r.entry_id !== null) return bad('leaf 0 is not the chained log', 0);
    const legacy = await legacyHead(db, seq0);
    if (legacy === null) return bad('the checkpoint leaf 0 commits to is missing', 0);
    const lh = leafHash(legacyLeaf(legacy));
    if (lh.toString('hex') !== r.leaf_hash) return bad('the leaf does not match its entry', 0);
    frontier.append(lh);
  }
  // Leaves 1… in ranges, checked here or by worker threads; appended in order as ranges complete.
  let broken: TreeVerifyResult | undefined;
  const onRange = (hashes: Buffer): boolean => {
    for (let at = 0; at < hashes.length; at += HASH_SIZE) {
      frontier.append(hashes.subarray(at, at + HASH_SIZE));
      const h = headAt.get(frontier.size);
      if (h !== undefined && frontier.root().toString('hex') !== h.root_hash) {
        const index = frontier.size - 1;
        broken = bad(`the leaves do not hash to the signed tree head of size ${h.tree_size} (edited, reordered, inserted or removed)`, index);
        return false;
      }
    }
    return true;
  };
  const fault = deps.parallel !== undefined && deps.parallel.threads > 1 && size > (deps.parallel.range ?? RANGE)
    ? await checkInThreads(deps.parallel, keys, size, onRange)
    : await checkHere(db, keys, size, onRange);
  if (fault !== null) return bad(fault.reason, fault.leafIndex, fault.entryId);
  if (broken !== undefined) return broken;
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
