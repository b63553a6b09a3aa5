import type { Kysely } from 'kysely';
import type { Clock } from '../../kernel/clock.ts';
import type { Database } from '../../store/schema.ts';

/**
 * The sources (client address, IPv6 by /64) each staff account was seen from, in
 * detection_sources: kept while seen within the history, pruned after. This table, not the
 * append-only audit log, is where addresses live. `last_seen` is written at most once an hour per
 * pair; several processes seeing a pair at once insert it once.
 */
export type Sighting = 'first' | 'known' | 'new';

export interface KnownSources {
  /** `first`: the actor's first source; `new`: a source beside others it had; `known`: seen before. */
  seen(actor: string, source: string, at: Date): Promise<Sighting>;
  prune(): Promise<number>;
}

const TOUCH_MS = 3_600_000;

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

    async prune() {
      const cutoff = new Date(clock.now().getTime() - historyMs).toISOString();
      byActor.clear();
      const result = await db.deleteFrom('detection_sources').where('last_seen', '<', cutoff).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
