import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Dialect } from '../database.ts';

/** `column IN ('a', 'b')` with literals: DDL takes no bound parameters on PostgreSQL. */
function sqlIn(column: string, values: readonly string[]): RawBuilder<unknown> {
  return sql`${sql.ref(column)} IN (${sql.join(values.map((v) => sql.lit(v)))})`;
}

/**
 * Identity: accounts (email only as blind index + ciphertext), TOTP, recovery codes, passkeys,
 * WebAuthn challenges, one-time links and attempt counters. Runs unchanged on both dialects;
 * factors and links go with their account (ON DELETE CASCADE).
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const big = dialect === 'postgres' ? 'bigint' : 'integer';
  await db.schema
    .createTable('identity_accounts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('realm', 'text', (c) => c.notNull().check(sqlIn('realm', ['customer', 'staff'])))
    .addColumn('email_index', 'text', (c) => c.notNull())
    .addColumn('email_sealed', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text')
    .addColumn('password_hash', 'text')
    .addColumn('password_changed_at', 'text')
    .addColumn('email_verified_at', 'text')
    .addColumn('user_handle', 'text', (c) => c.notNull().unique())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addUniqueConstraint('identity_accounts_email', ['realm', 'email_index'])
    .execute();
  await db.schema.createIndex('identity_accounts_customer').on('identity_accounts').columns(['customer_id']).execute();

  await db.schema
    .createTable('identity_totp')
    .addColumn('account_id', 'text', (c) => c.primaryKey().references('identity_accounts.id').onDelete('cascade'))
    .addColumn('secret_sealed', 'text', (c) => c.notNull())
    .addColumn('enabled_at', 'text')
    .addColumn('last_step', big)
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('identity_recovery_codes')
    .addColumn('account_id', 'text', (c) => c.notNull().references('identity_accounts.id').onDelete('cascade'))
    .addColumn('code_hash', 'text', (c) => c.notNull())
    .addColumn('used_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('identity_recovery_codes_pk', ['account_id', 'code_hash'])
    .execute();

  await db.schema
    .createTable('identity_passkeys')
    .addColumn('credential_id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('identity_accounts.id').onDelete('cascade'))
    .addColumn('public_key', 'text', (c) => c.notNull())
    .addColumn('counter', big, (c) => c.notNull())
    .addColumn('transports', 'text', (c) => c.notNull())
    .addColumn('device_type', 'text', (c) => c.notNull())
    .addColumn('backed_up', 'integer', (c) => c.notNull())
    .addColumn('name', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('last_used_at', 'text')
    .execute();
  await db.schema.createIndex('identity_passkeys_account').on('identity_passkeys').columns(['account_id']).execute();

  await db.schema
    .createTable('identity_webauthn_challenges')
    .addColumn('challenge', 'text', (c) => c.primaryKey())
    .addColumn('purpose', 'text', (c) => c.notNull().check(sqlIn('purpose', ['registration', 'authentication'])))
    .addColumn('account_id', 'text', (c) => c.references('identity_accounts.id').onDelete('cascade'))
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createIndex('identity_webauthn_challenges_expiry')
    .on('identity_webauthn_challenges')
    .columns(['expires_at'])
    .execute();

  await db.schema
    .createTable('identity_tokens')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('account_id', 'text', (c) => c.notNull().references('identity_accounts.id').onDelete('cascade'))
    .addColumn('purpose', 'text', (c) => c.notNull().check(sqlIn('purpose', ['verify_email', 'reset_password'])))
    .addColumn('secret_hash', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('used_at', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('identity_tokens_account').on('identity_tokens').columns(['account_id', 'purpose']).execute();

  await db.schema
    .createTable('identity_throttles')
    .addColumn('key', 'text', (c) => c.primaryKey())
    .addColumn('count', 'integer', (c) => c.notNull())
    .addColumn('window_start', big, (c) => c.notNull())
    .addColumn('blocked_until', big, (c) => c.notNull())
    .addColumn('strikes', 'integer', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .execute();
}
