import { verifyAuditLog } from '../audit/service.ts';
import { verifyAuditTree } from '../audit/verify-tree.ts';
import type { Runtime } from '../../runtime.ts';
import { failed, pass, plural, type Finding } from './finding.ts';

/**
 * Audit-log verification, as `custos audit verify` does it: the hash chain of earlier versions and
 * its signed checkpoints (src/modules/audit/verify.ts), the Merkle tree with every entry's MAC and
 * its signed heads (verify-tree.ts), and the consent ledger bound to its entries. Any break fails:
 * an edited, inserted or deleted row is what an intruder covering their tracks leaves (PCI DSS
 * 4.0.1 10.3.4). Reads the whole log.
 */
const ID = 'audit.verify';
const FIX =
  'treat it as a possible breach: copy the database as it is now, run custos audit verify for the details (with --anchor and a head kept outside the database), and open an incident (docs/posture.md)';

/** Which verification found the log altered (detection's `audit.verify_failed` event names it). */
export type AuditBreak = 'chain' | 'consent_ledger' | 'tree';

export async function checkAudit(
  runtime: Pick<Runtime, 'store' | 'rootKeys' | 'consent'>,
  options: { progress?: ((done: number, total: number) => void) | undefined; onBroken?: ((check: AuditBreak, reason: string) => void) | undefined } = {},
): Promise<Finding> {
  const deps = { db: runtime.store.db, keys: runtime.rootKeys };
  const log = await verifyAuditLog(deps, options.progress);
  if (!log.ok) {
    options.onBroken?.('chain', log.reason);
    const { seq, id } = log.firstBad;
    return failed(ID, `audit log BROKEN at entry seq ${seq ?? 'none'} (${id === 0 ? 'no row' : `id ${id}`}): ${log.reason}`, FIX);
  }
  const ledger = await runtime.consent.verifyLedger();
  if (ledger.length > 0) options.onBroken?.('consent_ledger', ledger[0]!.reason);
  if (ledger.length > 0) return failed(ID, `consent ledger BROKEN at row ${ledger[0]!.id}: ${ledger[0]!.reason}${ledger.length > 1 ? ` (and ${ledger.length - 1} more)` : ''}`, FIX);
  const tree = await verifyAuditTree(deps);
  if (!tree.ok) {
    options.onBroken?.('tree', tree.reason);
    const where = [tree.leafIndex === null ? null : `leaf ${tree.leafIndex}`, tree.entryId === null ? null : `entry ${tree.entryId}`].filter((x) => x !== null).join(', ');
    return failed(ID, `audit tree BROKEN${where === '' ? '' : ` at ${where}`}: ${tree.reason}`, FIX);
  }
  return pass(
    ID,
    `audit log intact: Merkle tree of ${plural(tree.treeSize, 'leaf', 'leaves')} and its signed heads, ${tree.pending} entries waiting; ${plural(log.entries, 'entry', 'entries')} chained before the tree, ${plural(log.checkpoints, 'signed checkpoint')}`,
  );
}
