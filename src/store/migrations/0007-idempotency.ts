import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

/**
 * Idempotency keys (tables in src/http/idempotency-tables.ts): one row per caller and key for 24
 * hours, holding keyed hashes of the key and the request and, once answered, the status and the
 * answer (ids only). Runs unchanged on SQLite and PostgreSQL.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('idempotency_keys')
    .addColumn('caller_ref', 'text', (c) => c.notNull())
    .addColumn('key_hash', 'text', (c) => c.notNull())
    .addColumn('request_hash', 'text', (c) => c.notNull())
    .addColumn('status', 'integer')
    .addColumn('response', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('idempotency_keys_pk', ['caller_ref', 'key_hash'])
    .execute();
  await db.schema.createIndex('idempotency_keys_expiry').on('idempotency_keys').columns(['expires_at']).execute();
}
