import { verifyAuditLog } from '../../modules/audit/service.ts';
import type { CommandRun } from '../main.ts';
import { UsageError } from '../io.ts';

export const AUDIT_USAGE = `  audit verify                                  check the audit log's hash chain, MACs and signed checkpoints`;

/** `custos audit verify`: exit 0 on an intact log; non-zero naming the first bad entry. */
export const auditCommand: CommandRun = async (runtime, args, io) => {
  if (args[0] !== 'verify') throw new UsageError(`audit verify\n${AUDIT_USAGE}`);
  // Entries written but not yet linked (the server links them within milliseconds) are linked first.
  await runtime.audit.chainPending();
  const result = await verifyAuditLog({ db: runtime.store.db, keys: runtime.rootKeys }, (done, total) =>
    io.progress(`verified ${done}/${total}`),
  );
  io.done();
  if (result.ok) {
    io.out(`audit log intact: ${result.entries} entries, ${result.checkpoints} signed checkpoints, ${result.pending} pending`);
    return 0;
  }
  // Row id 0: the entry is missing altogether (a truncated tail), so there is no row to name.
  const { seq, id } = result.firstBad;
  io.out(`audit log BROKEN at entry seq ${seq ?? 'none'} (${id === 0 ? 'no row' : `id ${id}`}): ${result.reason}`);
  return 1;
};
