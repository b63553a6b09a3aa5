import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

/**
 * Telling recipients (GDPR Art. 19) through signed webhooks: a recipient in the processor registry
 * may have an endpoint (`webhook_url`) and its Standard Webhooks signing secret, sealed under the
 * `webhooks` service key (`webhook_secret`). `processor_notices` holds one row per (rights request,
 * recipient): pending until the endpoint answers 2xx, retried with growing waits (`next_at`), `dead`
 * after the last attempt (the dead-letter list), `awaiting_confirmation` for a recipient with no
 * endpoint; `confirmed` by a 2xx or by a staff mark. Runs unchanged on SQLite and PostgreSQL.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema.alterTable('processors').addColumn('webhook_url', 'text').execute();
  await db.schema.alterTable('processors').addColumn('webhook_secret', 'text').execute();
  await db.schema
    .createTable('processor_notices')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('request_id', 'text', (c) => c.notNull())
    .addColumn('processor_id', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('next_at', 'text')
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('confirmed_at', 'text')
    .addColumn('confirmed_by', 'text')
    .execute();
  await db.schema.createIndex('processor_notices_one').on('processor_notices').columns(['request_id', 'processor_id']).unique().execute();
  await db.schema.createIndex('processor_notices_due').on('processor_notices').columns(['status', 'next_at']).execute();
}
