import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

/**
 * Uses of a session after it ended (expired or revoked), counted on the session's row so that
 * every server process shares one count: `dead_uses` waits to be summarised in the audit log,
 * `dead_use_logged_at` is when the last entry about them was written (src/modules/identity/sessions/
 * session-service.ts). The partial index finds the few rows with uses still to summarise.
 * Runs unchanged on SQLite and PostgreSQL.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema
    .alterTable('identity_sessions')
    .addColumn('dead_uses', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
  await db.schema.alterTable('identity_sessions').addColumn('dead_use_logged_at', 'text').execute();
  await db.schema
    .createIndex('identity_sessions_dead_uses')
    .on('identity_sessions')
    .columns(['dead_use_logged_at'])
    .where(sql.ref('dead_uses'), '>', 0)
    .execute();
}
