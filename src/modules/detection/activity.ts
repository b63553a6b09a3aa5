import type { Kysely } from 'kysely';
import type { Clock } from '../../kernel/clock.ts';
import type { Database } from '../../store/schema.ts';

/**
 * What the rules learn: hourly counters per actor, kept `history` long (30 days by default) in
 * detection_activity. Events add to counters in memory; a flush adds them to the table (an upsert
 * that adds, so several processes sum up), so learning never rescans the audit log. A profile
 * (usual peak of reads per hour, active days, activity per hour of day) is read once per actor
 * and kept for ten minutes.
 */
export type Counter = 'events' | 'reads' | 'signin' | 'signin_fail';

export interface Profile {
  /** Distinct days (UTC) with any event in the history. */
  readonly activeDays: number;
  /** Highest `reads` of any past hour. */
  readonly peakReads: number;
  /** Events per hour of day (UTC) on the days before today, 24 entries. */
  readonly byHourOfDay: readonly number[];
  /** Sums over the history per counter. */
  readonly totals: Readonly<Record<Counter, number>>;
}

export interface Activity {
  add(actor: string, counter: Counter, at: Date, n?: number): void;
  /** Writes what was counted since the last flush. */
  flush(): Promise<void>;
  /** The actor's learned profile, from what was flushed (cached ten minutes). */
  profile(actor: string): Promise<Profile>;
  /** Deletes counters older than the history. */
  prune(): Promise<number>;
}

const PROFILE_TTL_MS = 10 * 60_000;
const FLUSH_ROWS = 200;

export const hourOf = (at: Date) => at.toISOString().slice(0, 13);

export function createActivity(deps: { db: Kysely<Database>; clock: Clock; historyMs: number }): Activity {
  const { db, clock, historyMs } = deps;
  let pending = new Map<string, { actor: string; counter: Counter; hour: string; n: number }>();
  const profiles = new Map<string, { at: number; profile: Promise<Profile> }>();

  async function load(actor: string): Promise<Profile> {
    const now = clock.now();
    const rows = await db
      .selectFrom('detection_activity')
      .select(['hour', 'counter', 'n'])
      .where('actor', '=', actor)
      .where('hour', '>=', hourOf(new Date(now.getTime() - historyMs)))
      .execute();
    const current = hourOf(now);
    const today = current.slice(0, 10);
    const days = new Set<string>();
    const byHourOfDay = Array<number>(24).fill(0);
    const totals: Record<Counter, number> = { events: 0, reads: 0, signin: 0, signin_fail: 0 };
    let peakReads = 0;
    for (const r of rows) {
      const counter = r.counter as Counter;
      if (counter in totals) totals[counter] += r.n;
      if (counter === 'events') {
        days.add(r.hour.slice(0, 10));
        // Today's hours are not yet usual: the first night's access is still off hours.
        if (r.hour.slice(0, 10) !== today) byHourOfDay[Number(r.hour.slice(11, 13))]! += r.n;
      }
      if (counter === 'reads' && r.hour !== current) peakReads = Math.max(peakReads, r.n);
    }
    return { activeDays: days.size, peakReads, byHourOfDay, totals };
  }

  return {
    add(actor, counter, at, n = 1) {
      const hour = hourOf(at);
      const key = `${actor}\u0000${counter}\u0000${hour}`;
      const row = pending.get(key);
      if (row === undefined) pending.set(key, { actor, counter, hour, n });
      else row.n += n;
    },

    async flush() {
      if (pending.size === 0) return;
      const rows = [...pending.values()];
      pending = new Map();
      for (let i = 0; i < rows.length; i += FLUSH_ROWS)
        await db
          .insertInto('detection_activity')
          .values(rows.slice(i, i + FLUSH_ROWS))
          .onConflict((oc) => oc.columns(['actor', 'counter', 'hour']).doUpdateSet((eb) => ({ n: eb('detection_activity.n', '+', eb.ref('excluded.n')) })))
          .execute();
    },

    profile(actor) {
      const now = clock.now().getTime();
      const hit = profiles.get(actor);
      if (hit !== undefined && now - hit.at < PROFILE_TTL_MS) return hit.profile;
      if (profiles.size >= 10_000) profiles.clear();
      const profile = load(actor);
      profiles.set(actor, { at: now, profile });
      profile.catch(() => profiles.delete(actor));
      return profile;
    },

    async prune() {
      const cutoff = hourOf(new Date(clock.now().getTime() - historyMs - 3_600_000));
      const result = await db.deleteFrom('detection_activity').where('hour', '<', cutoff).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
