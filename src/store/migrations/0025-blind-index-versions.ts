import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

/**
 * Blind indexes name the version of the blind-index key they were computed under, so that the key
 * can rotate with its indexes rebuilt online (src/crypto/blind-index.ts):
 * - `blind_indexes.key_version` (every row so far: version 1);
 * - `identity_accounts.email_index_next`: during a rebuild, the account email's index under the
 *   new version, unique per realm like `email_index`, moved into `email_index` when it ends;
 * - `key_state` row `blind-index`: moves whenever the versions in force change; a write that
 *   indexed under an older set stores nothing and indexes again.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema.alterTable('blind_indexes').addColumn('key_version', 'integer', (c) => c.notNull().defaultTo(1)).execute();
  await db.schema.alterTable('identity_accounts').addColumn('email_index_next', 'text').execute();
  await sql`CREATE UNIQUE INDEX identity_accounts_email_next ON identity_accounts (realm, email_index_next) WHERE email_index_next IS NOT NULL`.execute(db);
  await sql`INSERT INTO key_state (name, value) VALUES ('blind-index', 1)`.execute(db);
}
