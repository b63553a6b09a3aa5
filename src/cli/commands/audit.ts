import { verifyAuditLog, writtenRecordVersions } from '../../modules/audit/service.ts';
import type { VaultService } from '../../modules/vault/service.ts';
import type { CommandRun } from '../main.ts';
import { parse } from '../main.ts';
import { UsageError } from '../io.ts';

export const AUDIT_USAGE = `  audit verify [--records]                      check the audit log's hash chain, MACs and signed checkpoints
                                                (--records: and that each record is at the version its last write produced)`;

/** Records compared per query by `--records`. */
const RECORD_PAGE = 1000;

/**
 * `custos audit verify [--records]`: exit 0 on an intact log; non-zero naming the first bad entry.
 * `--records` then compares each record's version with the version its last write's audit entry
 * recorded: a record behind it was rolled back to an older envelope (restored from a copy, say),
 * one ahead of it was written without an entry. A record at version 0 was written before record
 * versions and never since, and has no such entry.
 */
export const auditCommand: CommandRun = async (runtime, args, io) => {
  const [sub, ...rest] = args;
  if (sub !== 'verify') throw new UsageError(`audit verify [--records]\n${AUDIT_USAGE}`);
  const { values } = parse(rest, { records: { type: 'boolean' } });
  // Entries written but not yet linked (the server links them within milliseconds) are linked first.
  await runtime.audit.chainPending();
  const result = await verifyAuditLog({ db: runtime.store.db, keys: runtime.rootKeys }, (done, total) =>
    io.progress(`verified ${done}/${total}`),
  );
  // The consent ledger's rows are bound to their audit entries: an edited, inserted or deleted row is named.
  const ledger = await runtime.consent.verifyLedger();
  io.done();
  for (const p of ledger) io.out(`consent ledger BROKEN at row ${p.id}: ${p.reason}`);
  if (!result.ok) {
    // Row id 0: the entry is missing altogether (a truncated tail), so there is no row to name.
    const { seq, id } = result.firstBad;
    io.out(`audit log BROKEN at entry seq ${seq ?? 'none'} (${id === 0 ? 'no row' : `id ${id}`}): ${result.reason}`);
    return 1;
  }
  io.out(`audit log intact: ${result.entries} entries, ${result.checkpoints} signed checkpoints, ${result.pending} pending`);
  if (ledger.length > 0) return 1;
  if (values.records !== true) return 0;
  const mismatches = await compareRecordVersions(runtime.vault, await writtenRecordVersions(runtime.store.db), (n) => io.progress(`compared ${n} records`));
  io.done();
  for (const m of mismatches) io.out(`record ${m.id} is at version ${m.version}, its last audited write made version ${m.written ?? 'none'}: ${m.reason}`);
  if (mismatches.length > 0) {
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
