import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

/**
 * The consent capability (tables in src/modules/consent/tables.ts): the append-only consent
 * ledger, the notice versions Custos publishes and the version each consent-based purpose last
 * changed in, the versions of the receipts signing key, and the processor registry (recipients,
 * past ones kept with the date they ended). Runs unchanged on SQLite and PostgreSQL.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  // `seq` orders a subject's changes (two in the same millisecond keep their order).
  await db.schema
    .createTable('consent_ledger')
    .addColumn('seq', dialect === 'postgres' ? 'bigserial' : 'integer', (c) => (dialect === 'postgres' ? c.primaryKey() : c.primaryKey().autoIncrement()))
    .addColumn('id', 'text', (c) => c.notNull().unique())
    .addColumn('subject_id', 'text', (c) => c.notNull())
    .addColumn('purpose', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('notice_version', 'integer', (c) => c.notNull())
    .addColumn('proof', 'text')
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('recorded_at', 'text', (c) => c.notNull())
    .addColumn('request_id', 'text')
    .addColumn('mac', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('consent_ledger_subject').on('consent_ledger').columns(['subject_id', 'purpose', 'seq']).execute();
  await db.schema.createIndex('consent_ledger_purpose').on('consent_ledger').columns(['purpose', 'subject_id']).execute();

  await db.schema
    .createTable('consent_notices')
    .addColumn('version', 'integer', (c) => c.primaryKey())
    .addColumn('digest', 'text', (c) => c.notNull())
    .addColumn('published_at', 'text', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('consent_purpose_versions')
    .addColumn('purpose', 'text', (c) => c.primaryKey())
    .addColumn('digest', 'text', (c) => c.notNull())
    .addColumn('changed_in', 'integer', (c) => c.notNull())
    .execute();

  await db.schema
    .createTable('processors')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('purposes', 'text', (c) => c.notNull())
    .addColumn('categories', 'text', (c) => c.notNull())
    .addColumn('country', 'text', (c) => c.notNull())
    .addColumn('safeguard', 'text')
    .addColumn('dpa_signed', 'text')
    .addColumn('retention', 'text')
    .addColumn('added_at', 'text', (c) => c.notNull())
    .addColumn('removed_at', 'text')
    .execute();

  await db.schema
    .createTable('consent_receipt_keys')
    .addColumn('version', 'integer', (c) => c.primaryKey())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('retired_at', 'text')
    .execute();
}
