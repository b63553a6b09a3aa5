import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

/**
 * Key lifecycle (tables in src/crypto/tables.ts):
 * - `subject_keys` holds one row per (subject, data-key version) instead of one per subject;
 * - `keks.root_kid` names the root key that wraps each KEK version (filled at the next start);
 * - `service_keys` holds the service's own keys (blind index, API-key hash, audit MAC and signing,
 *   the identity and staff base keys), versioned and wrapped by the root key like the KEKs;
 * - `key_state` holds the key generation (bumped by every rotation and destruction, so that every
 *   process drops its cached keys) and, for a database made before this migration, the marker that
 *   the first version of each service key is the one derived from the root key until now.
 * Runs unchanged on SQLite and PostgreSQL.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('subject_keys_v')
    .addColumn('subject_id', 'text', (c) => c.notNull())
    .addColumn('dek_version', 'integer', (c) => c.notNull())
    .addColumn('kek_version', 'integer', (c) => c.notNull())
    .addColumn('wrapped', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('subject_keys_v_pk', ['subject_id', 'dek_version'])
    .execute();
  await sql`INSERT INTO subject_keys_v (subject_id, dek_version, kek_version, wrapped, created_at)
    SELECT subject_id, dek_version, kek_version, wrapped, created_at FROM subject_keys`.execute(db);
  await db.schema.dropTable('subject_keys').execute();
  await db.schema.alterTable('subject_keys_v').renameTo('subject_keys').execute();
  await db.schema.createIndex('subject_keys_kek_v').on('subject_keys').columns(['kek_version']).execute();

  await db.schema.alterTable('keks').addColumn('root_kid', 'text').execute();

  await db.schema
    .createTable('service_keys')
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('version', 'integer', (c) => c.notNull())
    .addColumn('root_kid', 'text', (c) => c.notNull())
    .addColumn('wrapped', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('service_keys_pk', ['name', 'version'])
    .execute();

  await db.schema
    .createTable('key_state')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('value', 'integer', (c) => c.notNull())
    .execute();
  await sql`INSERT INTO key_state (name, value) VALUES ('generation', 0)`.execute(db);
  // A database that already has KEKs was keyed by root-derived service keys: keep their values.
  await sql`INSERT INTO key_state (name, value) SELECT 'root-derived', 1 WHERE EXISTS (SELECT 1 FROM keks)`.execute(db);
}
