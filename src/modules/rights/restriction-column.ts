import { sql, type Expression, type Kysely, type RawBuilder, type SelectQueryBuilder } from 'kysely';
import type { Database } from '../../store/schema.ts';

/** The restriction column's value while a subject's erasure is accepted and completing. */
export const ERASING = 'erasing';

/**
 * What the policy must know of a subject before it releases anything (policy SubjectFacts):
 * `'erasing'` (ERASING) while an accepted erasure (GDPR Art. 17) completes — it wins; else the
 * JSON list of purposes still allowed under a restriction of processing (Art. 18) in force at
 * `now` (an ISO time: not lifted, or lifted only later); else null. `subject`: the customer id, or
 * a reference such as `records.subject_id` when this is a column of the statement reading a
 * subject's records. One expression for the restriction gate's own statement and for that column,
 * so the two cannot drift apart. Bound parameters, in order: `subject` (when a value) twice, then `now`.
 */
export function restrictionOf(db: Kysely<Database>, subject: Expression<string> | string, now: string): RawBuilder<string | null> {
  // An erasure is accepted once its request records the `accepted` step (erasure.ts); it stays in
  // force after completion (nothing is left to release) until the request record is purged.
  const erasing = db
    .selectFrom('rights_requests')
    .select(sql.lit(ERASING).as('restriction'))
    .where('customer_id', '=', subject)
    .where('kind', '=', sql.lit('erasure'))
    .where('state', '<>', sql.lit('denied'))
    .where('erasure_stage', 'is not', null)
    .limit(sql.lit(1));
  const restricted = db
    .selectFrom('rights_restrictions')
    .select('allowed_purposes')
    .where('customer_id', '=', subject)
    .where((eb) => eb.or([eb('lifts_at', 'is', null), eb('lifts_at', '>', now)]))
    .limit(sql.lit(1));
  return sql<string | null>`COALESCE(${erasing}, ${restricted})`;
}

/**
 * Adds the column `restriction` (restrictionOf, for each row's subject) to a statement reading
 * records, so the policy decides on what was read in the same snapshot with no query of its own.
 * Its one bound parameter, `now`, comes first in the compiled statement: a select list precedes the WHERE.
 */
export function withRestriction<O>(db: Kysely<Database>, q: SelectQueryBuilder<Database, 'records', O>, now: string) {
  return q.select(restrictionOf(db, sql.ref<string>('records.subject_id'), now).as('restriction'));
}
