import type { Kysely } from 'kysely';
import type { Clock } from '../kernel/clock.ts';
import { newId } from '../kernel/ids.ts';
import type { Database } from './schema.ts';

/**
 * Singleton jobs (`job_leases`, migration 0014-rights): in a deployment of several server
 * processes over one database, a job that must run once at a time (the retention sweep, the
 * incident reminders) runs in the process that holds its lease. A lease is taken when free or
 * expired and renewed by its holder; its expiry bounds how long a crashed holder blocks the others.
 */
export interface LeasedJob<T> {
  /** Runs the job now if this process takes the lease; undefined when another process holds it. */
  runLeased(): Promise<T | undefined>;
  /** Runs it every `everyMs` in the background (the timer never holds the process open). */
  start(everyMs: number): void;
  /** Stops the timer and waits for a run in progress. */
  stop(): Promise<void>;
}

export function leasedJob<T>(deps: { db: Kysely<Database>; clock: Clock; name: string; leaseMs: number; run: () => Promise<T>; onError?: ((error: unknown) => void) | undefined }): LeasedJob<T> {
  const { db, clock, name } = deps;
  const holder = newId('job');
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;

  /** Takes or renews the lease; true when this process holds it. */
  async function take(): Promise<boolean> {
    const now = clock.now();
    const until = new Date(now.getTime() + deps.leaseMs).toISOString();
    await db.insertInto('job_leases').values({ name, holder: '', expires_at: '' }).onConflict((oc) => oc.column('name').doNothing()).execute();
    const taken = await db
      .updateTable('job_leases')
      .set({ holder, expires_at: until })
      .where('name', '=', name)
      .where((eb) => eb.or([eb('holder', '=', holder), eb('expires_at', '<', now.toISOString())]))
      .executeTakeFirst();
    return Number(taken.numUpdatedRows) === 1;
  }

  const job: LeasedJob<T> = {
    async runLeased() {
      if (!(await take())) return undefined;
      try {
        return await deps.run();
      } finally {
        await db.updateTable('job_leases').set({ expires_at: '' }).where('name', '=', name).where('holder', '=', holder).execute();
      }
    },
    start(everyMs) {
      if (timer !== undefined) return;
      timer = setInterval(() => {
        running ??= job
          .runLeased()
          .catch((error: unknown) => deps.onError?.(error))
          .finally(() => (running = undefined));
      }, everyMs);
      timer.unref();
    },
    async stop() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      await running;
    },
  };
  return job;
}
