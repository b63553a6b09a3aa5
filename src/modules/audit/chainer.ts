import type { Kysely } from 'kysely';
import type { AuditKeys } from '../../crypto/keyring.ts';
import type { Clock } from '../../kernel/clock.ts';
import type { Dialect } from '../../store/database.ts';
import type { Database } from '../../store/schema.ts';
import { newerServiceKeyExists } from '../../crypto/service-keys.ts';
import { chainHash, entryText, macMatchesAny, signCheckpoint } from './canonical.ts';
import { lockHead, markRejected, selectPending, writeChain, writeHeadAndCheckpoint, type ChainedRow } from './repository.ts';

export interface ChainDeps {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  readonly keys: AuditKeys;
  readonly clock: Clock;
  /** Most pending rows chained in one transaction. */
  readonly batch: number;
}

export interface ChainReport {
  /** Entries chained. */
  chained: number;
  /** Pending entries refused (their MAC failed, or a copy of them was already seen): never chained. */
  rejected: { id: number; reason: string }[];
}

/**
 * One chaining pass, in one transaction: take the head lock (one statement), read the oldest
 * pending rows, check each MAC, compute seq/prev_hash/hash in the process, write them back in one
 * statement, move the head and sign a checkpoint of it (Ed25519). Rows whose MAC fails are marked
 * rejected and never chained, unless the database holds an audit MAC key version newer than this
 * process's (rotated after it started): then the pass ends before that row, which waits, pending,
 * for a process that holds the new version (so a rotation never gets honest entries rejected).
 * Every process may run this at once: the head lock makes them take
 * turns, and one chain results (PCI DSS 4.0.1 10.3.2, 10.3.4: logs protected from modification,
 * changes detectable).
 */
export async function chainOnce(deps: ChainDeps): Promise<ChainReport & { processed: number }> {
  const { keys } = deps;
  return deps.db.transaction().execute(async (tx) => {
    const head = await lockHead(tx);
    const rows = await selectPending(tx, deps.batch);
    const rejected: { id: number; reason: string }[] = [];
    if (rows.length === 0) return { processed: 0, chained: 0, rejected };
    const chained: ChainedRow[] = [];
    const nonces = new Set<string>();
    let seq = head.seq;
    let prev = head.hash;
    let processed = 0;
    for (const row of rows) {
      const text = entryText(row);
      if (!macMatchesAny(keys, text, row.mac)) {
        if (keys.auditMacVersion !== undefined && (await newerServiceKeyExists(tx, 'audit-mac', keys.auditMacVersion))) break;
        processed += 1;
        rejected.push({ id: row.id, reason: 'mac' });
        continue;
      }
      processed += 1;
      if (nonces.has(row.nonce)) {
        rejected.push({ id: row.id, reason: 'duplicate' });
        continue;
      }
      nonces.add(row.nonce);
      seq += 1;
      const hash = chainHash(prev, seq, row.id, row.mac, text);
      chained.push({ id: row.id, seq, prev_hash: prev, hash });
      prev = hash;
    }
    await markRejected(tx, rejected);
    if (chained.length > 0) {
      await writeChain(tx, deps.dialect, chained);
      const checkpoint = { seq, hash: prev, key_id: keys.auditSigning.keyId, at: deps.clock.now().toISOString() };
      await writeHeadAndCheckpoint(tx, { ...checkpoint, signature: signCheckpoint(keys.auditSigning.privateKey, checkpoint) });
    }
    return { processed, chained: chained.length, rejected };
  });
}

/** Chains until no full batch is left. */
export async function chainAll(deps: ChainDeps): Promise<ChainReport> {
  const report: ChainReport = { chained: 0, rejected: [] };
  for (;;) {
    const pass = await chainOnce(deps);
    report.chained += pass.chained;
    report.rejected.push(...pass.rejected);
    if (pass.processed < deps.batch) return report;
  }
}
