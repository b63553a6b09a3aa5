import type { Kysely } from 'kysely';
import type { Clock } from '../../kernel/clock.ts';
import { leasedJob } from '../../store/job-lease.ts';
import type { Database } from '../../store/schema.ts';
import type { AuditLog } from '../audit/service.ts';
import { addMonths, utcDate } from '../rights/deadlines.ts';
import type { RightsService } from '../rights/service.ts';
import type { VaultErasure } from '../vault/erasure.ts';
import type { BackupShredStep } from '../../crypto/key-lifecycle.ts';

/**
 * The retention sweep: what has outlived its declared retention goes. Hold keys whose hold ended
 * are destroyed with their held records (vault/erasure.ts); data-subject request records closed
 * more than 24 months ago are purged (CCPA regulations 7101); identity's dead sessions, tickets,
 * links and attempt counters are forgotten (identity's sweep); and once the earliest data-key
 * destruction is CUSTOS_KEK_ROTATION_AFTER_ERASURE_DAYS old, the KEK is rotated and the old
 * versions retired, so backups no longer open destroyed keys. A dry run counts and acts on
 * nothing. Every real run is audited, one entry per batch of at most 256 records, naming them.
 * Run by `custos retention run` or, inside a server, on a schedule by one process at a time (a
 * lease in `job_leases`).
 */
export const REQUEST_RECORD_MONTHS = 24;
const LEASE_NAME = 'retention';
const BATCH = 256;

export interface RetentionReport {
  dry_run: boolean;
  hold_keys_destroyed: number;
  held_records_erased: number;
  rights_requests_purged: number;
  /** Rows identity's sweep removed; null in a dry run (identity counts only by sweeping). */
  identity_rows_purged: number | null;
  /** The KEK rotation that makes destroyed data keys unreadable in backups (CUSTOS_KEK_ROTATION_AFTER_ERASURE_DAYS). */
  backups: BackupShredStep;
}

/** What the sweep should have removed some time ago and is still stored (`custos doctor`). */
export interface RetentionOverdue {
  hold_keys: number;
  held_records: number;
  rights_requests: number;
}

export interface RetentionService {
  run(options: { dryRun: boolean }): Promise<RetentionReport>;
  /** What a sweep run `days` ago would already have removed and is still stored; changes nothing. */
  overdue(days: number): Promise<RetentionOverdue>;
  /** Runs now if this process takes the lease; undefined when another holds it. */
  runLeased(): Promise<RetentionReport | undefined>;
  start(everyMs?: number): void;
  stop(): Promise<void>;
}

export function createRetentionService(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditLog, 'append'>;
  vault: Pick<VaultErasure, 'expireHolds'>;
  rights: Pick<RightsService, 'purgeClosedBefore'>;
  identitySweep: () => Promise<number>;
  /** The KEK rotation after destructions: its step, run last (rotateKekAfterShreds over the key store). */
  backupShred: (dryRun: boolean) => Promise<BackupShredStep>;
  /** Daily work of the scheduled sweep only (the rights digest mail); never in `custos retention run`. */
  daily?: () => Promise<unknown>;
  onError?: (error: unknown) => void;
}): RetentionService {
  const { db, clock } = deps;
  async function audited(action: string, collection: string, ids: readonly string[]) {
    for (let i = 0; i < ids.length; i += BATCH)
      await deps.audit.append({ actor: 'system:retention', action, collection, fields: ids.slice(i, i + BATCH), outcome: 'success' });
  }

  /** What is due on `today`: held records whose hold ended before it, request records closed 24 months before it. */
  async function due(today: string, dryRun: boolean) {
    const holds = await deps.vault.expireHolds(today, dryRun);
    const requests = await deps.rights.purgeClosedBefore(`${addMonths(today, -REQUEST_RECORD_MONTHS)}T00:00:00.000Z`, dryRun);
    return { holds, requests };
  }

  async function run({ dryRun }: { dryRun: boolean }): Promise<RetentionReport> {
    const { holds, requests } = await due(utcDate(clock.now()), dryRun);
    const identityRows = dryRun ? null : await deps.identitySweep();
    if (!dryRun) {
      await audited('retention.held_records.erased', 'held_records', holds.recordIds);
      await audited('retention.rights_requests.purged', 'rights_requests', requests);
    }
    // After the hold keys above: their destruction is reached in backups by the same rotation.
    const backups = await deps.backupShred(dryRun);
    if (backups.rotated_to !== null) {
      await deps.audit.append({ actor: 'system:retention', action: 'keys.rotate', recordId: `kek:v${backups.rotated_to}`, fields: [], outcome: 'success' });
      for (const v of backups.retired) await deps.audit.append({ actor: 'system:retention', action: 'keys.retire', recordId: `kek:v${v}`, fields: [], outcome: 'success' });
    }
    return {
      dry_run: dryRun,
      hold_keys_destroyed: holds.holdKeys,
      held_records_erased: holds.recordIds.length,
      rights_requests_purged: requests.length,
      identity_rows_purged: identityRows,
      backups,
    };
  }

  const job = leasedJob({
    db,
    clock,
    name: LEASE_NAME,
    leaseMs: 15 * 60_000,
    run: async () => {
      const report = await run({ dryRun: false });
      await deps.daily?.();
      return report;
    },
    onError: deps.onError,
  });

  return {
    run,
    async overdue(days) {
      const { holds, requests } = await due(utcDate(new Date(clock.now().getTime() - days * 86_400_000)), true);
      return { hold_keys: holds.holdKeys, held_records: holds.recordIds.length, rights_requests: requests.length };
    },
    runLeased: () => job.runLeased(),
    start: (everyMs = 60 * 60_000) => job.start(everyMs),
    stop: () => job.stop(),
  };
}
