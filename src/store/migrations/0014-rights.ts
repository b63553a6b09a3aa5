import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

/**
 * Data-subject requests (src/modules/rights/tables.ts): one row per request and one per state it
 * passed through. At most one erasure request per customer that was not denied (a partial unique
 * index), so that repeating `DELETE /v1/customers/{id}` finds the first. Runs unchanged on SQLite
 * and PostgreSQL.
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
}
