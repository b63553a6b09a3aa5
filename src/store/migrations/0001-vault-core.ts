import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

/** Vault core: keys, records, blind indexes, API keys, audit log. Runs unchanged on both dialects. */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const big = dialect === 'postgres' ? 'bigint' : 'integer';
  await db.schema
    .createTable('keks')
    .addColumn('version', 'integer', (c) => c.primaryKey())
    .addColumn('wrapped', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('subject_keys')
    .addColumn('subject_id', 'text', (c) => c.primaryKey())
    .addColumn('kek_version', 'integer', (c) => c.notNull())
    .addColumn('dek_version', 'integer', (c) => c.notNull())
    .addColumn('wrapped', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('subject_keys_kek').on('subject_keys').columns(['kek_version']).execute();
  await db.schema
    .createTable('records')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('collection', 'text', (c) => c.notNull())
    .addColumn('subject_id', 'text', (c) => c.notNull())
    .addColumn('parent_id', 'text')
    .addColumn('data', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('records_subject').on('records').columns(['subject_id', 'collection', 'id']).execute();
  await db.schema
    .createTable('blind_indexes')
    .addColumn('collection', 'text', (c) => c.notNull())
    .addColumn('field', 'text', (c) => c.notNull())
    .addColumn('digest', 'text', (c) => c.notNull())
    .addColumn('record_id', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('blind_indexes_pk', ['collection', 'field', 'digest', 'record_id'])
    .execute();
  await db.schema.createIndex('blind_indexes_record').on('blind_indexes').columns(['record_id']).execute();
  await db.schema
    .createTable('api_keys')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('secret_hash', 'text', (c) => c.notNull())
    .addColumn('purposes', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('revoked_at', 'text')
    .execute();
  await db.schema
    .createTable('audit_log')
    .addColumn('id', dialect === 'postgres' ? 'bigserial' : 'integer', (c) =>
      dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement(),
    )
    .addColumn('seq', big, (c) => c.unique())
    .addColumn('at', 'text', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('action', 'text', (c) => c.notNull())
    .addColumn('subject_id', 'text')
    .addColumn('collection', 'text')
    .addColumn('record_id', 'text')
    .addColumn('fields', 'text', (c) => c.notNull())
    .addColumn('purpose', 'text')
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('request_id', 'text')
    .addColumn('nonce', 'text', (c) => c.notNull())
    .addColumn('mac', 'text', (c) => c.notNull())
    .addColumn('prev_hash', 'text')
    .addColumn('hash', 'text')
    .addColumn('rejected', 'text')
    .execute();
  await db.schema.createIndex('audit_log_subject').on('audit_log').columns(['subject_id', 'id']).execute();
  // A replayed copy of an entry carries the same MAC-covered nonce: the database refuses it.
  await db.schema.createIndex('audit_log_nonce').on('audit_log').columns(['nonce']).unique().execute();
  await sql`CREATE INDEX audit_log_pending ON audit_log (id) WHERE seq IS NULL AND rejected IS NULL`.execute(db);
  await db.schema
    .createTable('audit_head')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('seq', big, (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('audit_checkpoints')
    .addColumn('seq', big, (c) => c.primaryKey())
    .addColumn('hash', 'text', (c) => c.notNull())
    .addColumn('signature', 'text', (c) => c.notNull())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('at', 'text', (c) => c.notNull())
    .execute();
  const genesis = '0'.repeat(64);
  await sql`INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, ${genesis})`.execute(db);
}
