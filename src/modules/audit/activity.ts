import type { Kysely } from 'kysely';
import type { Database } from '../../store/schema.ts';

/**
 * What some actors did in a time window, grouped (an incident's blast radius,
 * src/modules/incidents/blast-radius.ts): one row per distinct (subject, collection, record,
 * action, purpose, outcome, field list), with how many entries fell in it and when the first and
 * last were written. Reads the index `audit_log_actor_at` (migration 0017-incidents): one index
 * range per actor, never the whole log. Entries the chainer rejected (a MAC that did not verify)
 * are left out; entries still waiting to be chained are counted.
 */
export interface ActivityGroup {
  readonly subject_id: string | null;
  readonly collection: string | null;
  readonly record_id: string | null;
  readonly action: string;
  readonly purpose: string | null;
  readonly outcome: string;
  /** JSON array of field names, as the entries hold it. */
  readonly fields: string;
  readonly entries: number;
  readonly first_at: string;
  readonly last_at: string;
}

/** `from` inclusive, `to` exclusive (ISO 8601 UTC, the form every entry's `at` has). */
export async function actorActivity(db: Kysely<Database>, query: ActivityQuery): Promise<ActivityGroup[]> {
  if (query.actors.length === 0) return [];
  const rows = await activityQuery(db, query).execute();
  return rows.map((r) => ({ ...r, entries: Number(r.entries) }));
}

export interface ActivityQuery {
  readonly actors: readonly string[];
  readonly from: string;
  readonly to: string;
}

/** The query itself, also for a test that asks the database's planner which index it takes. */
export function activityQuery(db: Kysely<Database>, query: ActivityQuery) {
  return db
    .selectFrom('audit_log')
    .select(['subject_id', 'collection', 'record_id', 'action', 'purpose', 'outcome', 'fields'])
    .select((eb) => [eb.fn.countAll<number>().as('entries'), eb.fn.min('at').as('first_at'), eb.fn.max('at').as('last_at')])
    .where('actor', 'in', [...query.actors])
    .where('at', '>=', query.from)
    .where('at', '<', query.to)
    .where('rejected', 'is', null)
    .groupBy(['subject_id', 'collection', 'record_id', 'action', 'purpose', 'outcome', 'fields']);
}

