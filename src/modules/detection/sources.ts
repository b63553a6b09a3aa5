import type { Kysely } from 'kysely';
import type { Clock } from '../../kernel/clock.ts';
import type { Database } from '../../store/schema.ts';

/**
 * The sources (client address, IPv6 by /64) each actor — staff member, API key, customer, card
 * session — was seen from, in detection_sources: kept while seen within the history, pruned after.
 * This table, not the append-only audit log, is where addresses live; it answers an incident's
 * question "who used this source" (`actorsFrom`). `last_seen` is written at most once an hour per
 * pair; several processes seeing a pair at once insert it once.
 *
 * The origins of card requests (PCI DSS 4.0.1 10.2.2) in detection_origins: each card audit entry
 * carries its request id, and this table resolves the id to the source the request came from,
 * for a year (10.5.1: audit history kept at least 12 months), then pruned.
 */
export type Sighting = 'first' | 'known' | 'new';

export interface Origin {
  readonly request_id: string;
  readonly source: string;
  readonly actor: string | null;
  readonly at: string;
}

export interface KnownSources {
  /** `first`: the actor's first source; `new`: a source beside others it had; `known`: seen before. */
  seen(actor: string, source: string, at: Date): Promise<Sighting>;
  /**
   * The actors seen from `source` within the window (a pair's `last_seen` may lag its last
   * sighting by up to an hour: the window is widened by that much before it); `keptSince` when
   * the window starts before the history kept, whose sightings are pruned.
   */
  actorsFrom(source: string, window: { from: string; to: string }): Promise<readonly string[] | { keptSince: string }>;
  /** Stores the origins of card requests (one row per request id; a repeat keeps the first). */
  recordOrigins(origins: readonly Origin[]): Promise<void>;
  /** The origins of these request ids, as far as they are kept. */
  originsOf(requestIds: readonly string[]): Promise<Origin[]>;
  prune(): Promise<number>;
}

const TOUCH_MS = 3_600_000;
/** Card request origins are kept a year (PCI DSS 4.0.1 10.5.1), then pruned. */
export const ORIGIN_KEEP_MS = 366 * 86_400_000;

export function createKnownSources(deps: { db: Kysely<Database>; clock: Clock; historyMs: number }): KnownSources {
  const { db, clock, historyMs } = deps;
  const byActor = new Map<string, Map<string, number>>();

  async function sourcesOf(actor: string): Promise<Map<string, number>> {
    let known = byActor.get(actor);
    if (known !== undefined) return known;
    const rows = await db
      .selectFrom('detection_sources')
      .select(['source', 'last_seen'])
      .where('actor', '=', actor)
      .where('last_seen', '>=', new Date(clock.now().getTime() - historyMs).toISOString())
      .execute();
    known = new Map(rows.map((r) => [r.source, Date.parse(r.last_seen)]));
    if (byActor.size >= 10_000) byActor.clear();
    byActor.set(actor, known);
    return known;
  }

  return {
    async seen(actor, source, at) {
      const known = await sourcesOf(actor);
      const iso = at.toISOString();
      const written = known.get(source);
      if (written !== undefined) {
        if (at.getTime() - written >= TOUCH_MS) {
          known.set(source, at.getTime());
          await db.updateTable('detection_sources').set({ last_seen: iso }).where('actor', '=', actor).where('source', '=', source).execute();
        }
        return 'known';
      }
      const had = known.size;
      known.set(source, at.getTime());
      const inserted = await db
        .insertInto('detection_sources')
        .values({ actor, source, first_seen: iso, last_seen: iso })
        .onConflict((oc) => oc.columns(['actor', 'source']).doUpdateSet({ last_seen: iso }))
        .returning('first_seen')
        .executeTakeFirst();
      // Another process stored it first: not new here either.
      if (inserted !== undefined && inserted.first_seen !== iso) return 'known';
      return had === 0 ? 'first' : 'new';
    },

    async actorsFrom(source, window) {
      const keptSince = new Date(clock.now().getTime() - historyMs).toISOString();
      if (window.from < keptSince) return { keptSince };
      const rows = await db
        .selectFrom('detection_sources')
        .select('actor')
        .where('source', '=', source)
        .where('last_seen', '>=', new Date(Date.parse(window.from) - TOUCH_MS).toISOString())
        .where('first_seen', '<', window.to)
        .execute();
      return rows.map((r) => r.actor).sort();
    },

    async recordOrigins(origins) {
      if (origins.length === 0) return;
      await db
        .insertInto('detection_origins')
        .values(origins.map((o) => ({ ...o })))
        .onConflict((oc) => oc.column('request_id').doNothing())
        .execute();
    },

    async originsOf(requestIds) {
      if (requestIds.length === 0) return [];
      return db.selectFrom('detection_origins').selectAll().where('request_id', 'in', [...requestIds]).orderBy('at').execute();
    },

    async prune() {
      const now = clock.now().getTime();
      const cutoff = new Date(now - historyMs).toISOString();
      byActor.clear();
      const result = await db.deleteFrom('detection_sources').where('last_seen', '<', cutoff).executeTakeFirst();
      const origins = await db.deleteFrom('detection_origins').where('at', '<', new Date(now - ORIGIN_KEEP_MS).toISOString()).executeTakeFirst();
      return Number(result.numDeletedRows) + Number(origins.numDeletedRows);
    },
  };
}
