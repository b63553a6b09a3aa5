import { setTimeout as sleep } from 'node:timers/promises';
import type { SealTarget, VaultService } from './service.ts';

/**
 * The re-seal job: one pass over every record, by id, in batches, sealing again each record that
 * is in the per-field format or sealed under another data key than `target` gives (for the
 * conversion to envelopes: the subject's current key; for a data-key rotation: the new one).
 * Each record is a compare-and-swap on its record version (VaultService.resealBatch), so a write
 * landing meanwhile is never lost, and the job holds no lock between records. Nothing is
 * remembered between runs: a run killed at any point, run again, passes over the records once
 * more, skips those already sealed as wanted and finishes. When a pass leaves no per-field
 * record, the store is marked re-sealed and that format is refused from then on
 * (docs/adr/0003-record-envelope.md).
 *
 * On SQLite one connection writes at a time: the job gives way after each batch for as long as
 * the batch took (at least `giveWayMs`), so a running server gets the write lock between batches.
 */
export interface ResealOptions {
  readonly target: SealTarget;
  readonly batch: number;
  /** Pause after each batch, at least this long and as long as the batch took (SQLite); 0: none. */
  readonly giveWayMs: number;
  readonly progress?: (examined: number, resealed: number) => void;
  readonly signal?: AbortSignal;
}

export interface ResealReport {
  examined: number;
  resealed: number;
  /** Records that failed to open (altered): left as they were. */
  failed: string[];
  /** Whether the store is now marked re-sealed (no per-field record left). */
  complete: boolean;
}

export async function runReseal(vault: Pick<VaultService, 'resealBatch' | 'completeReseal'>, options: ResealOptions): Promise<ResealReport> {
  const report: ResealReport = { examined: 0, resealed: 0, failed: [], complete: false };
  let after = '';
  for (;;) {
    if (options.signal?.aborted === true) return report;
    const started = performance.now();
    const step = await vault.resealBatch(after, options.batch, options.target);
    report.examined += step.examined;
    report.resealed += step.resealed;
    report.failed.push(...step.failed);
    options.progress?.(report.examined, report.resealed);
    if (step.next === undefined) break;
    after = step.next;
    if (options.giveWayMs > 0) await sleep(Math.max(options.giveWayMs, performance.now() - started));
  }
  report.complete = report.failed.length === 0 && (await vault.completeReseal());
  return report;
}
