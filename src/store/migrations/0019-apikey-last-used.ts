import { sql, type Kysely } from 'kysely';
import type { Dialect, MigrationReport } from '../database.ts';

/**
 * `api_keys.last_used_at`: when a key last authenticated a request, written at most once per key
 * per hour (src/modules/apikeys/service.ts), so that `custos doctor` can name keys nobody has used
 * for 90 days. Existing keys start from their newest audit entry (`actor = 'apikey:<id>'`), read in
 * one pass over the log; a key with none stays NULL (never seen in use). Runs unchanged on SQLite
 * and PostgreSQL.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<MigrationReport | void> {
  await db.schema.alterTable('api_keys').addColumn('last_used_at', 'text').execute();
  const seen = await sql<{ actor: string; at: string }>`SELECT actor, max(at) AS at FROM audit_log WHERE actor LIKE 'apikey:%' GROUP BY actor`.execute(db);
  let backfilled = 0;
  for (const { actor, at } of seen.rows) {
    const done = await sql`UPDATE api_keys SET last_used_at = ${at} WHERE id = ${actor.slice('apikey:'.length)}`.execute(db);
    backfilled += Number(done.numAffectedRows ?? 0);
  }
  if (backfilled > 0) return { api_keys_last_used_backfilled: backfilled };
}
