import { setTimeout as sleep } from 'node:timers/promises';
import type { CommandRun } from '../main.ts';
import { parse } from '../main.ts';
import { UsageError } from '../io.ts';
import { runReseal } from '../../modules/vault/reseal.ts';

/**
 * `custos keys rotate`: adds a KEK version, then re-wraps data keys in batches. Each batch is its
 * own transaction and only moves keys still under an older version, so an interrupted rotation
 * run again simply finishes; reads and writes go on meanwhile (PCI DSS 3.6, 3.7: cryptoperiods).
 *
 * On SQLite one connection writes at a time, and a server waiting for the lock retries after
 * growing sleeps (up to 100 ms). Batches run back to back would take the lock again before the
 * server's next try and hold its requests (every read writes its audit entry) until the rotation
 * ends. So on SQLite the rotation gives way after each batch for as long as the batch took, and at
 * least GIVE_WAY_MS: it holds the write lock at most about half the time.
 */
const GIVE_WAY_MS = 5;

function batchSize(given: string | undefined): number {
  const batch = given === undefined ? 500 : Number(given);
  if (!Number.isInteger(batch) || batch < 1 || batch > 10_000) throw new UsageError('--batch-size must be 1..10000');
  return batch;
}

export const keysCommand: CommandRun = async (runtime, args, io) => {
  const [sub, ...rest] = args;
  if (sub === 'status') {
    const { values } = parse(rest, { json: { type: 'boolean' } });
    const status = await runtime.keys.status();
    if (values.json === true) io.out(JSON.stringify(status, null, 2));
    else {
      io.out(`current KEK version: ${status.current}`);
      for (const v of status.versions) io.out(`v${v.version}\t${v.created_at}\t${v.subjects} data keys`);
    }
    return 0;
  }
  if (sub === 'rotate') {
    const { values } = parse(rest, { 'batch-size': { type: 'string' }, resume: { type: 'boolean' } });
    const batch = batchSize(values['batch-size']);
    // Finish an interrupted rotation first: if older versions still wrap keys, the newest KEK is the target.
    const before = await runtime.keys.status();
    const unfinished = before.versions.some((v) => v.version < before.current && v.subjects > 0);
    const target = unfinished || values.resume === true ? before.current : await runtime.keys.addKekVersion();
    const total = await runtime.keys.pendingRewrap(target);
    io.err(unfinished ? `resuming rotation to KEK v${target}: ${total} data keys to re-wrap` : `added KEK v${target}; ${total} data keys to re-wrap`);
    const giveWay = runtime.config.database.kind === 'sqlite';
    let done = 0;
    for (;;) {
      const started = performance.now();
      const moved = await runtime.keys.rewrapBatch(target, batch);
      if (moved === 0 && (await runtime.keys.pendingRewrap(target)) === 0) break;
      done += moved;
      io.progress(`re-wrapped ${done}/${total}`);
      if (giveWay) await sleep(Math.max(GIVE_WAY_MS, performance.now() - started));
    }
    io.done();
    await runtime.audit.append({ actor: 'cli', action: 'keys.rotate', recordId: `kek:v${target}`, fields: [], outcome: 'success' });
    io.out(`rotated: KEK v${target} wraps every data key (${done} re-wrapped)`);
    return 0;
  }
  if (sub === 'reseal') {
    const { values } = parse(rest, { 'batch-size': { type: 'string' } });
    const batch = batchSize(values['batch-size']);
    const { db } = runtime.store;
    const report = await runReseal(runtime.vault, {
      batch,
      giveWayMs: runtime.config.database.kind === 'sqlite' ? GIVE_WAY_MS : 0,
      target: (subjectId) => runtime.keys.dekFor(db, subjectId, false),
      progress: (examined, resealed) => io.progress(`examined ${examined} records, re-sealed ${resealed}`),
    });
    io.done();
    await runtime.audit.append({ actor: 'cli', action: 'keys.reseal', fields: [], outcome: report.complete ? 'success' : 'failure' });
    for (const id of report.failed) io.err(`record ${id} failed its integrity check and was left as it is`);
    if (!report.complete) {
      io.out(`re-sealed ${report.resealed} of ${report.examined} records; ${report.failed.length} failed their integrity check: not finished`);
      return 1;
    }
    io.out(`re-sealed ${report.resealed} records (${report.examined} examined): every record is an envelope`);
    return 0;
  }
  throw new UsageError('keys rotate|status|reseal');
};
