import type { Kysely, Transaction } from 'kysely';
import type { AuditKeys } from '../../crypto/keyring.ts';
import type { Clock } from '../../kernel/clock.ts';
import { AppError, fail } from '../../kernel/errors.ts';
import type { Logger } from '../../kernel/logger.ts';
import type { Dialect } from '../../store/database.ts';
import type { Database } from '../../store/schema.ts';
import { entryText, macMatchesAny } from './canonical.ts';
import { createAuditBackend } from './backend.ts';
import { AUDIT_QUERY_INVALID, AUDIT_UNAVAILABLE } from './errors.ts';
import { createGroupCommit } from './group-commit.ts';
import { insertPending, selectByAction, selectForSubject, type StoredRow } from './repository.ts';
import { createRowBuilder, type PendingRow } from './schema.ts';
import { fromStoredNodes, latestHead, leafIndexes, releaseLease, treeWorkWaiting, type InclusionProofView } from './tree-store.ts';
import { inclusionProof } from './merkle.ts';
import { withheldHash, type SignedTreeHead } from './tree-head.ts';
import { randomUUID } from 'node:crypto';

export { verifyAuditLog, writtenRecordVersions, type VerifyResult, type VerifyDeps } from './verify.ts';
export { INSERT_COLUMNS } from './repository.ts';
export type { PendingRow } from './schema.ts';

export interface AuditEntry {
  /** 'apikey:key_…', 'staff:…', 'customer:…', 'cli', 'system'. */
  actor: string;
  /** e.g. 'vault.read', 'vault.create', 'vault.update', 'vault.lookup', 'audit.read'. */
  action: string;
  subjectId?: string | null;
  collection?: string | null;
  recordId?: string | null;
  /** Field names, never values. */
  fields?: readonly string[];
  purpose?: string | null;
  outcome: 'success' | 'denied' | 'failure';
  requestId?: string | null;
  /** A vault write: the record version it produced. */
  recordVersion?: number | null;
}

/**
 * What an observer of appended entries gets beside the entry (detection, fed through the security
 * events of src/kernel/security-events.ts): facts the append-only log must not hold, such as the
 * client address of the request, and non-personal inputs of detection rules.
 */
export interface AuditContext {
  /** The client address (`sourceOf` form); without it the observer may know it by the request id. */
  readonly source?: string | null | undefined;
  readonly detail?: Readonly<Record<string, string | number | boolean | null>> | undefined;
}

/** Sees every entry once it is appended (a read: committed; a write: inserted in its transaction). Must not throw or block. */
export type AuditObserver = (entry: AuditEntry, context: AuditContext | undefined) => void;

export interface AuditRecord {
  id: number;
  /** Its place in the hash chain of versions before migration 0024; NULL for every later entry. */
  seq: number | null;
  at: string;
  actor: string;
  action: string;
  subjectId: string | null;
  collection: string | null;
  recordId: string | null;
  fields: string[];
  purpose: string | null;
  outcome: string;
  requestId: string | null;
  /** SHA-256 of what the subject's view withholds (nonce, request id, MAC): with the visible columns it rebuilds the leaf. */
  withheldHash: string;
}

/** Inclusion proofs of entries against the newest signed tree head (null: not yet under a head). */
export interface EntryProofs {
  head: SignedTreeHead | null;
  proofs: Map<number, InclusionProofView>;
}

export interface AuditLog {
  /** For reads: resolves once the entry is committed (group commit); rejects AUDIT_UNAVAILABLE. */
  append(entry: AuditEntry, context?: AuditContext): Promise<void>;
  /**
   * For a write that inserts its entry in its own statement (INSERT_COLUMNS order): the pending
   * row, checked and MACed, exactly as appendInTx would insert it.
   */
  pendingRow(entry: AuditEntry, context?: AuditContext): PendingRow;
  /** For writes: inserts the entry in the caller's transaction, so both commit or neither. */
  appendInTx(tx: Transaction<Database>, entry: AuditEntry, context?: AuditContext): Promise<void>;
  /** Entries about one data subject, newest first; `before` is an entry id (cursor). */
  forSubject(subjectId: string, opts: { limit: number; before?: number }): Promise<AuditRecord[]>;
  /** Inclusion proofs of these entries against the newest signed tree head, built from one read of the nodes they need. */
  proofs(entryIds: readonly number[]): Promise<EntryProofs>;
  /**
   * Entries whose action starts with `prefix`, oldest first after entry id `after`, each with
   * whether its MAC holds: a capability that binds its own rows to audit entries (the consent
   * ledger) checks both sides with it.
   */
  byAction(prefix: string, opts: { limit: number; after: number }): Promise<(AuditRecord & { macValid: boolean })[]>;
  /**
   * Admits every waiting entry to the Merkle tree now and signs a head over it (the CLI, tests, a
   * stopping process); returns how many entries it admitted. (The name is the one callers knew
   * when a chaining pass did this.)
   */
  chainPending(): Promise<number>;
  /** Starts the background tree builder (and accepts appends again after stop). */
  start(): void;
  /** Writes what is queued, admits what is waiting under a signed head, stops the timers; later appends fail closed. */
  stop(): Promise<void>;
}

export interface AuditLogDeps {
  db: Kysely<Database>;
  dialect: Dialect;
  keys: AuditKeys;
  clock: Clock;
  /**
   * While a commit is in progress, the longest wait, in ms, before the entries of concurrent reads
   * that arrived meanwhile start a commit of their own (they go sooner once 32 are waiting, or
   * when the commit in progress ends).
   */
  flushMs: number;
  /** How often the background tree builder looks for waiting entries (default 100 ms). */
  chainIntervalMs?: number;
  /**
   * The builder signs a tree head once the newest is this old (ms) or this many leaves lie beyond
   * it, whichever comes first (CUSTOS_AUDIT_HEAD_INTERVAL_MS, CUSTOS_AUDIT_HEAD_ENTRIES).
   */
  heads?: { intervalMs: number; entries: number };
  /** Most entries in one group commit (default 500). */
  batchSize?: number;
  /**
   * SQLite only: commit read batches and build the tree on a worker thread with its own connection
   * (default true), so that the fsync of those commits does not stop the event loop.
   */
  sqliteThread?: boolean;
  /** How long the tree builder's lease lasts without renewal (default 10 s). */
  treeLeaseMs?: number;
  /** Runs one statement outside any transaction, prepared once per connection (Store.read). */
  statement?: (sql: string, parameters: readonly unknown[]) => Promise<unknown>;
  logger?: Logger;
  /** Told of every entry appended (detection's feed); never stores anything in the log. */
  observe?: AuditObserver;
}

function recordOf(r: StoredRow): AuditRecord {
  return {
    id: r.id,
    seq: r.seq === null ? null : Number(r.seq),
    at: r.at,
    actor: r.actor,
    action: r.action,
    subjectId: r.subject_id,
    collection: r.collection,
    recordId: r.record_id,
    fields: JSON.parse(r.fields) as string[],
    purpose: r.purpose,
    outcome: r.outcome,
    requestId: r.request_id,
    withheldHash: withheldHash(r),
  };
}

/**
 * Batches written at once; more queue up into a bigger next batch. On the SQLite thread, one:
 * its one connection commits batches one after another anyway, and a commit's fixed cost (WAL
 * frames, fsync, checkpoints) dominates small batches: measured on the 2-core machine, an entry
 * cost 27 µs of CPU to insert in batches of 32 and 13 µs in batches of 128.
 */
const MAX_IN_FLIGHT = 2;
/**
 * While a batch is being written, the next starts alongside only with this many entries (or
 * after flushMs); otherwise they wait for the batch in flight to finish. A commit's fixed cost
 * (round trip, WAL flush, planning) dominates small batches: on PostgreSQL, measured with the
 * audit log alone, an entry cost 22 µs of server and 25 µs of database CPU in batches of 32,
 * 77 µs and 101 µs in batches of 2 (docs/benchmarks.md).
 */
const MIN_BATCH_ALONGSIDE = 32;
/** Most entries the tree builder admits in one transaction (and one signed tree head). */
const TREE_BATCH = 2000;

function unavailable(message: string, cause: unknown): AppError {
  return new AppError(AUDIT_UNAVAILABLE.code, AUDIT_UNAVAILABLE.status, message, { cause });
}

/**
 * The audit log of every read and write of personal data. Reads wait for their entry to be
 * committed before any data leaves (fail closed), writes commit their entry with the write; both
 * insert each entry once, with its MAC, and never update it. A background tree builder admits
 * the entries as leaves of a Merkle tree once their MAC verifies and signs tree heads. Design and
 * tamper model: docs/adr/0001-audit-log.md, docs/adr/0004-audit-merkle-log.md.
 * PCI DSS 4.0.1 10.2.1.1 (every individual access to cardholder data is logged), 10.2.2 (what
 * each entry records), 10.3.2/10.3.4 (protected from modification, changes detected); GDPR
 * Art. 5(2) (accountability).
 */
export function createAuditLog(deps: AuditLogDeps): AuditLog {
  const { db, dialect, keys, clock, logger } = deps;
  const observe: AuditObserver = deps.observe ?? (() => undefined);
  const chainIntervalMs = deps.chainIntervalMs ?? 100;
  const buildRow = createRowBuilder(keys.auditMac, () => clock.now());
  const backend = createAuditBackend({ db, dialect, keys, clock, thread: deps.sqliteThread !== false, statement: deps.statement });

  const group = createGroupCommit<PendingRow>({
    write: async (rows) => {
      try {
        await backend.insert(rows);
      } catch (error) {
        logger?.error({ code: (error as { code?: unknown }).code, entries: rows.length }, 'audit batch could not be written');
        throw error;
      }
    },
    flushMs: deps.flushMs,
    batchSize: Math.max(1, deps.batchSize ?? 500),
    maxInFlight: backend.serial ? 1 : MAX_IN_FLIGHT,
    minBatch: MIN_BATCH_ALONGSIDE,
  });

  const holder = randomUUID();
  const treeLeaseMs = deps.treeLeaseMs ?? 10_000;
  let accepting = true;
  let started = false;
  let timer: NodeJS.Timeout | undefined;
  let tick: Promise<void> | undefined;
  let chainQueue: Promise<unknown> = Promise.resolve();

  const heads = deps.heads ?? { intervalMs: 1000, entries: 10_000 };

  function build(force: boolean): Promise<number> {
    const run = chainQueue.then(async () => {
      const tree = await backend.build({ holder, leaseMs: treeLeaseMs, batch: TREE_BATCH, heads: { ...heads, force } });
      for (const r of tree.refused) {
        logger?.warn({ auditEntryId: r.id, reason: r.reason }, 'audit entry failed its check and was not admitted to the tree');
      }
      return tree.admitted;
    });
    chainQueue = run.catch(() => undefined);
    return run;
  }
  const chainPending = () => build(true);

  function arm(): void {
    if (!started || timer !== undefined) return;
    timer = setTimeout(() => {
      timer = undefined;
      tick = (async () => {
        try {
          if (await treeWorkWaiting(db)) await build(false);
        } catch (error) {
          logger?.error({ code: (error as { code?: unknown }).code }, 'audit tree builder pass failed');
        }
      })();
      void tick.finally(() => {
        tick = undefined;
        arm();
      });
    }, chainIntervalMs);
    timer.unref();
  }

  return {
    async append(entry, context) {
      if (!accepting) fail(AUDIT_UNAVAILABLE, 'the audit log is stopped');
      const row = buildRow(entry);
      try {
        await group.push(row);
      } catch (error) {
        throw unavailable('the audit entry could not be written', error);
      }
      observe(entry, context);
    },

    pendingRow(entry, context) {
      const row = buildRow(entry);
      // The caller inserts the row in its own statement; a write that then fails is still seen.
      observe(entry, context);
      return row;
    },

    async appendInTx(tx, entry, context) {
      const row = buildRow(entry);
      try {
        await insertPending(tx, dialect, [row]);
      } catch (error) {
        throw unavailable('the audit entry could not be written', error);
      }
      observe(entry, context);
    },

    async forSubject(subjectId, opts) {
      const { limit, before } = opts;
      if (!Number.isInteger(limit) || limit < 1 || limit > 1000) fail(AUDIT_QUERY_INVALID, 'limit must be an integer in 1..1000');
      if (before !== undefined && (!Number.isInteger(before) || before < 1)) fail(AUDIT_QUERY_INVALID, 'before must be a positive entry id');
      const rows = await selectForSubject(db, subjectId, limit, before);
      const out: AuditRecord[] = [];
      for (const r of rows) {
        // A row without a valid MAC was not written by Custos: never show it as history.
        if (!macMatchesAny(keys, entryText(r), r.mac)) {
          logger?.warn({ auditEntryId: r.id }, 'audit entry with an invalid MAC left out of a subject listing');
          continue;
        }
        out.push(recordOf(r));
      }
      return out;
    },

    async proofs(entryIds) {
      const head = await latestHead(db);
      const proofs = new Map<number, InclusionProofView>();
      if (head === null || entryIds.length === 0) return { head, proofs };
      const leaves = [...(await leafIndexes(db, entryIds))].filter(([, leaf]) => leaf < head.tree_size);
      const paths = await fromStoredNodes(db, (nodes) => leaves.map(([, leaf]) => inclusionProof(nodes, leaf, head.tree_size)));
      leaves.forEach(([id, leaf], i) => {
        proofs.set(id, { leaf_index: leaf, tree_size: head.tree_size, inclusion_path: paths[i]!.map((h) => h.toString('hex')) });
      });
      return { head, proofs };
    },

    async byAction(prefix, opts) {
      const rows = await selectByAction(db, prefix, opts.limit, opts.after);
      return rows.map((r) => ({ ...recordOf(r), macValid: macMatchesAny(keys, entryText(r), r.mac) }));
    },

    chainPending,

    start() {
      accepting = true;
      started = true;
      arm();
    },

    async stop() {
      accepting = false;
      started = false;
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      await group.drain();
      if (tick !== undefined) await tick;
      try {
        await chainPending();
        await releaseLease(db, holder);
      } finally {
        await backend.close();
      }
    },
  };
}
