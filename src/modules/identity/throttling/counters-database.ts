import type { Kysely } from 'kysely';
import { fail } from '../../../kernel/errors.ts';
import type { Database } from '../../../store/schema.ts';
import { IdentityErrors } from '../errors.ts';
import { forgetAfter, hit, type BucketPolicy, type BucketState, type CounterStore } from './throttle-policy.ts';

/**
 * Attempt counters in the database, atomic on SQLite and PostgreSQL alike: read the row, apply
 * the rule, write it back only if its `version` is still the one read (compare-and-set), else
 * read again. Every lost race means another attempt was counted, so the loop always makes
 * progress, and no two attempts ever spend the same unit of budget (PCI DSS 8.3.4).
 */
const MAX_ROUNDS = 500;

type Row = Database['identity_throttles'];
const toState = (r: Row): BucketState => ({
  count: r.count,
  windowStart: Number(r.window_start),
  blockedUntil: Number(r.blocked_until),
  strikes: r.strikes,
});

export function createDatabaseCounters(deps: { db: Kysely<Database> }): CounterStore {
  const { db } = deps;
  const read = (key: string) => db.selectFrom('identity_throttles').selectAll().where('key', '=', key).executeTakeFirst();

  return {
    kind: 'database',

    async hit(key, policy, now) {
      for (let round = 0; round < MAX_ROUNDS; round++) {
        const row = await read(key);
        const result = hit(row === undefined ? undefined : toState(row), now, policy);
        if (!result.allowed) return result;
        const s = result.state;
        const values = { count: s.count, window_start: s.windowStart, blocked_until: s.blockedUntil, strikes: s.strikes };
        if (row === undefined) {
          const inserted = await db
            .insertInto('identity_throttles')
            .values({ key, ...values, version: 1 })
            .onConflict((oc) => oc.column('key').doNothing())
            .executeTakeFirst();
          if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 1) return result;
        } else {
          const updated = await db
            .updateTable('identity_throttles')
            .set({ ...values, version: row.version + 1 })
            .where('key', '=', key)
            .where('version', '=', row.version)
            .executeTakeFirst();
          if (Number(updated.numUpdatedRows) === 1) return result;
        }
      }
      fail(IdentityErrors.IDENTITY_BUSY, 'the attempt counter is too contended; try again shortly');
    },

    async peek(key) {
      const row = await read(key);
      return row === undefined ? undefined : toState(row);
    },

    async clear(key) {
      await db.deleteFrom('identity_throttles').where('key', '=', key).execute();
    },

    async sweep(now: number, policyOf: (key: string) => BucketPolicy) {
      const rows = await db.selectFrom('identity_throttles').selectAll().where('window_start', '<', now).limit(5000).execute();
      let deleted = 0;
      for (const row of rows) {
        if (forgetAfter(toState(row), policyOf(row.key)) > now) continue;
        const result = await db
          .deleteFrom('identity_throttles')
          .where('key', '=', row.key)
          .where('version', '=', row.version)
          .executeTakeFirst();
        deleted += Number(result.numDeletedRows);
      }
      return deleted;
    },
  };
}
