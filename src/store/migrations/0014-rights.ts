import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

/**
 * Data-subject requests (src/modules/rights/tables.ts): one row per request and one per state it
 * passed through. At most one erasure request per customer that was not denied (a partial unique
 * index), so that repeating `DELETE /v1/customers/{id}` finds the first. Runs unchanged on SQLite
 * and PostgreSQL. Also the vault's `held_records`: fields kept for a legal obligation after an
 * erasure, sealed under hold keys (src/modules/vault/erasure.ts); and `job_leases`, which lets one
 * process at a time run the retention sweep (src/modules/retention/service.ts).
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('rights_requests')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('jurisdiction', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('channel', 'text', (c) => c.notNull())
    .addColumn('identity_verification', 'text')
    .addColumn('received_at', 'text', (c) => c.notNull())
    .addColumn('paused_since', 'text')
    .addColumn('paused_days', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('extended', 'integer', (c) => c.notNull().defaultTo(0))
    .addColumn('reason', 'text')
    .addColumn('due_on', 'text', (c) => c.notNull())
    .addColumn('acknowledge_by', 'text')
    .addColumn('closed_at', 'text')
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .addColumn('erasure_plan', 'text')
    .addColumn('erasure_stage', 'text')
    .addColumn('receipt', 'text')
    .execute();
  await db.schema.createIndex('rights_requests_customer').on('rights_requests').columns(['customer_id', 'kind']).execute();
  await db.schema.createIndex('rights_requests_open').on('rights_requests').columns(['closed_at', 'due_on']).execute();
  await sql`CREATE UNIQUE INDEX rights_requests_one_erasure ON rights_requests (customer_id) WHERE kind = 'erasure' AND state <> 'denied'`.execute(db);
  await db.schema
    .createTable('rights_request_events')
    .addColumn('request_id', 'text', (c) => c.notNull())
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('reason', 'text')
    .addColumn('at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('rights_request_events_pk', ['request_id', 'seq'])
    .execute();
  // The vault's fields held for a legal obligation after an erasure (src/modules/vault/erasure-tables.ts).
  await db.schema
    .createTable('held_records')
    .addColumn('record_id', 'text', (c) => c.primaryKey())
    .addColumn('subject_id', 'text', (c) => c.notNull())
    .addColumn('collection', 'text', (c) => c.notNull())
    .addColumn('hold_subject', 'text', (c) => c.notNull())
    .addColumn('data', 'text', (c) => c.notNull())
    .addColumn('held_until', 'text', (c) => c.notNull())
    .addColumn('ground', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('held_records_subject').on('held_records').columns(['subject_id']).execute();
  await db.schema
    .createTable('job_leases')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('holder', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('held_records_until').on('held_records').columns(['held_until']).execute();
}
