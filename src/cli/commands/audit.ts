import { readFileSync, writeFileSync } from 'node:fs';
import { availableParallelism } from 'node:os';
import { exportAuditLog } from '../../modules/audit/export.ts';
import { verifyLogFile } from '../../modules/audit/log-file.ts';
import { verifyAuditLog, writtenRecordVersions } from '../../modules/audit/service.ts';
import type { VaultService } from '../../modules/vault/service.ts';
import type { SignedTreeHead } from '../../modules/audit/tree-head.ts';
import { latestHead, leafIndexes, proveLeaf } from '../../modules/audit/tree-store.ts';
import { verifyAuditTree } from '../../modules/audit/verify-tree.ts';
import type { CommandRun } from '../main.ts';
import type { Io } from '../io.ts';
import { UsageError } from '../io.ts';

export const AUDIT_USAGE = `  audit verify [--anchor FILE] [--records]      check the audit log (chain, Merkle tree, signed heads); prints the head it verified
                                                (--records: and that each record is at the version its last write produced)
  audit verify --public-key KEYS --log FILE     check an exported log with the public keys only (no database, no configuration)
  audit head                                    print the newest signed tree head, to keep outside the database
  audit export --out FILE                       write the log as JSON lines with its signed tree heads
  audit prove ENTRY_ID                          print an entry's inclusion proof against the newest signed head`;

/** Records compared per query by `--records`. */
const RECORD_PAGE = 1000;

function option(args: readonly string[], name: string): string | undefined {
  const i = args.indexOf(name);
  if (i === -1) return undefined;
  const v = args[i + 1];
  if (v === undefined || v.startsWith('--')) throw new UsageError(`${name} needs a value`);
  return v;
}

function readJson(file: string, what: string): unknown {
  try {
    return JSON.parse(readFileSync(file, 'utf8')) as unknown;
  } catch {
    throw new UsageError(`${what} ${file} is not a readable JSON file`);
  }
}

function readHead(file: string): SignedTreeHead {
  const h = readJson(file, 'anchor') as Partial<SignedTreeHead> | null;
  if (h === null || typeof h.tree_size !== 'number' || typeof h.root_hash !== 'string' || typeof h.timestamp !== 'string' || typeof h.key_id !== 'string' || typeof h.signature !== 'string') {
    throw new UsageError(`anchor ${file} is not a signed tree head (custos audit head)`);
  }
  return { tree_size: h.tree_size, root_hash: h.root_hash, timestamp: h.timestamp, key_id: h.key_id, signature: h.signature };
}

/**
 * `custos audit verify --public-key KEYS --log FILE`: checks an exported log against the JWK set of
 * GET /v1/keys/audit. Runs before, and instead of, opening the runtime: no database, no
 * configuration, no root key. Returns undefined for every other audit command.
 */
export function auditOffline(args: readonly string[], io: Io): number | undefined {
  if (args[0] !== 'verify' || !args.includes('--log')) return undefined;
  const log = option(args, '--log');
  const keys = option(args, '--public-key');
  if (log === undefined || keys === undefined) throw new UsageError('audit verify --public-key KEYS --log FILE');
  let text: string;
  try {
    text = readFileSync(log, 'utf8');
  } catch {
    throw new UsageError(`log ${log} cannot be read`);
  }
  const result = verifyLogFile(text, readJson(keys, 'public keys'));
  if (!result.ok) {
    io.out(`audit log file BROKEN at line ${result.line}: ${result.reason}`);
    return 1;
  }
  io.out(`audit log file intact: ${result.treeSize} leaves, ${result.heads} signed tree heads`);
  io.out(JSON.stringify(result.head));
  return 0;
}

/** `custos audit …`: exit 0 on an intact log; non-zero naming the first bad entry or leaf. */
export const auditCommand: CommandRun = async (runtime, args, io) => {
  const db = runtime.store.db;
  const keys = runtime.rootKeys;
  switch (args[0]) {
    case 'head': {
      await runtime.audit.chainPending();
      const head = await latestHead(db);
      if (head === null) {
        io.err('the audit log has no signed tree head yet');
        return 1;
      }
      io.out(JSON.stringify(head));
      return 0;
    }
    case 'prove': {
      const id = Number(args[1]);
      if (!Number.isSafeInteger(id) || id < 1) throw new UsageError('audit prove ENTRY_ID');
      await runtime.audit.chainPending();
      const head = await latestHead(db);
      const proof = await proveLeaf(db, (await leafIndexes(db, [id])).get(id), head);
      if (proof === null) {
        io.err(`entry ${id} is not in the signed tree (unknown, refused, or waiting for the next head)`);
        return 1;
      }
      io.out(JSON.stringify({ entry_id: id, proof, head }));
      return 0;
    }
    case 'export': {
      const out = option(args, '--out');
      if (out === undefined) throw new UsageError('audit export --out FILE');
      await runtime.audit.chainPending();
      const lines: string[] = [];
      const head = await exportAuditLog(db, (l) => lines.push(l));
      writeFileSync(out, lines.length === 0 ? '' : `${lines.join('\n')}\n`, { mode: 0o600 });
      io.out(`exported ${lines.length} lines up to the signed tree head of size ${head?.tree_size ?? 0}`);
      return 0;
    }
    case 'verify':
      break;
    default:
      throw new UsageError(`audit head|verify|export|prove\n${AUDIT_USAGE}`);
  }
  const anchorFile = option(args, '--anchor');
  const anchor = anchorFile === undefined ? undefined : readHead(anchorFile);
  // Entries not yet admitted to the tree (the server admits them within milliseconds) are admitted first.
  await runtime.audit.chainPending();
  const result = await verifyAuditLog({ db, keys }, (done, total) => io.progress(`verified ${done}/${total}`));
  // The consent ledger's rows are bound to their audit entries: an edited, inserted or deleted row is named.
  const ledger = await runtime.consent.verifyLedger();
  io.done();
  // Detection raises its critical audit_tamper alert on each failed check (README "Detection").
  const broken = (check: string, reason: string) =>
    runtime.events.emit({ at: runtime.clock.now(), action: 'audit.verify_failed', outcome: 'failure', actor: 'cli', detail: { check, reason: reason.slice(0, 200) } });
  for (const p of ledger) io.out(`consent ledger BROKEN at row ${p.id}: ${p.reason}`);
  if (ledger.length > 0) broken('consent_ledger', ledger[0]!.reason);
  if (!result.ok) {
    broken('chain', result.reason);
    // Row id 0: the entry is missing altogether (a truncated tail), so there is no row to name.
    const { seq, id } = result.firstBad;
    io.out(`audit log BROKEN at entry seq ${seq ?? 'none'} (${id === 0 ? 'no row' : `id ${id}`}): ${result.reason}`);
    return 1;
  }
  io.out(`audit chain intact: ${result.entries} entries chained before the tree, ${result.checkpoints} signed checkpoints`);
  // The leaves (MAC, leaf and node hashes) on one worker thread per core, each with its own connection.
  const tree = await verifyAuditTree({ db, keys, parallel: { database: runtime.config.database, threads: availableParallelism() } }, anchor);
  if (!tree.ok) {
    broken('tree', tree.reason);
    const where = [tree.leafIndex === null ? null : `leaf ${tree.leafIndex}`, tree.entryId === null ? null : `entry ${tree.entryId}`].filter((x) => x !== null).join(', ');
    io.out(`audit tree BROKEN${where === '' ? '' : ` at ${where}`}: ${tree.reason}`);
    return 1;
  }
  io.out(`audit tree intact: ${tree.treeSize} leaves, ${tree.pending} entries waiting${anchor === undefined ? '' : `, extends the anchor of size ${anchor.tree_size}`}; verified head:`);
  io.out(JSON.stringify(tree.head));
  if (ledger.length > 0) return 1;
  if (!args.includes('--records')) return 0;
  const mismatches = await compareRecordVersions(runtime.vault, await writtenRecordVersions(db), (n) => io.progress(`compared ${n} records`));
  io.done();
  for (const m of mismatches) io.out(`record ${m.id} is at version ${m.version}, its last audited write made version ${m.written ?? 'none'}: ${m.reason}`);
  if (mismatches.length > 0) {
    broken('records', `${mismatches.length} records not at the version of their last audited write`);
    io.out(`records BROKEN: ${mismatches.length} not at the version of their last audited write`);
    return 1;
  }
  io.out('records intact: each is at the version of its last audited write');
  return 0;
};

interface Mismatch {
  id: string;
  version: number;
  written: number | undefined;
  reason: string;
}

async function compareRecordVersions(vault: VaultService, written: ReadonlyMap<string, number>, progress: (n: number) => void): Promise<Mismatch[]> {
  const out: Mismatch[] = [];
  let after = '';
  let seen = 0;
  for (;;) {
    const page = await vault.recordVersions(after, RECORD_PAGE);
    if (page.length === 0) return out;
    for (const { id, version } of page) {
      const last = written.get(id);
      if (last !== undefined && version < last) out.push({ id, version, written: last, reason: 'rolled back to an older envelope' });
      else if (version > (last ?? 0)) out.push({ id, version, written: last, reason: 'written without an audit entry' });
    }
    seen += page.length;
    progress(seen);
    after = page.at(-1)!.id;
  }
}
