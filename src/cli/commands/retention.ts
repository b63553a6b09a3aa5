import type { CommandRun } from '../main.ts';
import { UsageError } from '../io.ts';

export const RETENTION_USAGE = `  retention run [--dry-run] [--json]            one retention sweep now: expired holds, request records, dead sessions`;

/** `custos retention run [--dry-run] [--json]`: one retention sweep now; a dry run changes nothing. */
export const retentionCommand: CommandRun = async (runtime, args, io) => {
  const [sub, ...flags] = args;
  if (sub !== 'run' || flags.some((f) => f !== '--dry-run' && f !== '--json')) throw new UsageError('retention run [--dry-run] [--json]');
  const dryRun = flags.includes('--dry-run');
  io.progress(dryRun ? 'counting what a retention sweep would remove' : 'sweeping');
  const report = await runtime.retention.run({ dryRun });
  io.done();
  if (flags.includes('--json')) io.out(JSON.stringify(report));
  else {
    const verb = dryRun ? 'would' : '';
    io.out(`${dryRun ? 'dry run: ' : ''}hold keys ${verb ? 'to destroy' : 'destroyed'}: ${report.hold_keys_destroyed}`);
    io.out(`held records ${verb ? 'to erase' : 'erased'}: ${report.held_records_erased}`);
    io.out(`data-subject request records ${verb ? 'to purge' : 'purged'} (closed > 24 months): ${report.rights_requests_purged}`);
    io.out(`expired sessions, links and counters purged: ${report.identity_rows_purged ?? 'counted only by a real run'}`);
  }
  return 0;
};
