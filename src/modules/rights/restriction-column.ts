import { sql, type ExpressionBuilder, type SelectQueryBuilder } from 'kysely';
import type { Database } from '../../store/schema.ts';

/**
 * Which restriction of processing (GDPR Art. 18) is in force: one that has not been lifted, or
 * whose lift lies after `now` (an ISO time). The one condition behind both the restriction gate's
 * own query (restrictions.ts) and RESTRICTION_COLUMN, so the two cannot drift apart.
 */
export function inForce<O>(q: SelectQueryBuilder<Database, 'rights_restrictions', O>, now: string): SelectQueryBuilder<Database, 'rights_restrictions', O> {
  return q.where((eb) => eb.or([eb('lifts_at', 'is', null), eb('lifts_at', '>', now)])).limit(sql.lit(1));
}

/**
 * The restriction in force for each record's subject, as a column (`restriction`: the JSON list of
 * purposes still allowed, or null) of the statement that reads the records, so the policy decides
 * on what was read in the same snapshot, with no query of its own (policy SubjectFacts). Its one
 * bound parameter, `now`, comes first in the compiled statement: a select list precedes the WHERE.
 */
export function withRestriction<O>(q: SelectQueryBuilder<Database, 'records', O>, now: string) {
  return q.select((eb: ExpressionBuilder<Database, 'records'>) =>
    inForce(eb.selectFrom('rights_restrictions').select('allowed_purposes').whereRef('rights_restrictions.customer_id', '=', 'records.subject_id'), now).as('restriction'),
  );
}

