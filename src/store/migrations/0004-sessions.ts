import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Dialect } from '../database.ts';

/** `column IN ('a', 'b')` with literals: DDL takes no bound parameters on PostgreSQL. */
function sqlIn(column: string, values: readonly string[]): RawBuilder<unknown> {
  return sql`${sql.ref(column)} IN (${sql.join(values.map((v) => sql.lit(v)))})`;
}

/**
 * Sessions and MFA tickets of identity (tables in src/modules/identity/session-tables.ts). Tokens
 * are stored only as keyed hashes; both go with their account (ON DELETE CASCADE). Runs unchanged
 * on SQLite and PostgreSQL.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('identity_sessions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('token_hash', 'text', (c) => c.notNull().unique())
    .addColumn('account_id', 'text', (c) => c.notNull().references('identity_accounts.id').onDelete('cascade'))
    .addColumn('realm', 'text', (c) => c.notNull().check(sqlIn('realm', ['customer', 'staff'])))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('authenticated_at', 'text', (c) => c.notNull())
    .addColumn('mfa_verified_at', 'text')
    .addColumn('last_seen_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('device', 'text', (c) => c.notNull())
    .addColumn('rotated_at', 'text')
    .addColumn('revoked_at', 'text')
    .addColumn('revoked_reason', 'text')
    .execute();
  await db.schema.createIndex('identity_sessions_account').on('identity_sessions').columns(['account_id', 'revoked_at']).execute();
  await db.schema.createIndex('identity_sessions_expiry').on('identity_sessions').columns(['expires_at']).execute();

  await db.schema
    .createTable('identity_mfa_tickets')
    .addColumn('ticket_hash', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('identity_accounts.id').onDelete('cascade'))
    .addColumn('realm', 'text', (c) => c.notNull().check(sqlIn('realm', ['customer', 'staff'])))
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('failures', 'integer', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('identity_mfa_tickets_expiry').on('identity_mfa_tickets').columns(['expires_at']).execute();
}
