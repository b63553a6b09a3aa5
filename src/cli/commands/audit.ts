import { verifyAuditLog } from '../../modules/audit/service.ts';
import type { CommandRun } from '../main.ts';
import { UsageError } from '../io.ts';

/** `custos audit verify`: exit 0 on an intact log; non-zero naming the first bad entry. */
export const auditCommand: CommandRun = async (runtime, args, io) => {
  if (args[0] !== 'verify') throw new UsageError('audit verify');
  // Entries written but not yet linked (the server links them within milliseconds) are linked first.
  await runtime.audit.chainPending();
  const result = await verifyAuditLog({ db: runtime.store.db, keys: runtime.rootKeys }, (done, total) =>
    io.progress(`verified ${done}/${total}`),
  );
  // The consent ledger's rows are bound to their audit entries: an edited, inserted or deleted row is named.
  const ledger = await runtime.consent.verifyLedger();
  io.done();
  for (const p of ledger) io.out(`consent ledger BROKEN at row ${p.id}: ${p.reason}`);
  if (result.ok) {
    io.out(`audit log intact: ${result.entries} entries, ${result.checkpoints} signed checkpoints, ${result.pending} pending`);
    return ledger.length === 0 ? 0 : 1;
  }
  // Row id 0: the entry is missing altogether (a truncated tail), so there is no row to name.
  const { seq, id } = result.firstBad;
  io.out(`audit log BROKEN at entry seq ${seq ?? 'none'} (${id === 0 ? 'no row' : `id ${id}`}): ${result.reason}`);
  return 1;
};
