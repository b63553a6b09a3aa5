import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

/**
 * Data-subject rights beyond requests and erasure (src/modules/rights/tables.ts): the download
 * links of access and portability exports (`rights_exports`, one row per link: single use, with an
 * end); restrictions of processing (GDPR Art. 18, `rights_restrictions`: one row per restriction,
 * in force until `lifts_at`); and the Shopify compliance webhooks received (`shopify_webhooks`,
 * keyed by `X-Shopify-Webhook-Id` so a redelivery is answered once) with the shop erasures they
 * ask for (`shop_erasures`, waiting for two approvers). Runs unchanged on SQLite and PostgreSQL.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('rights_exports')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('request_id', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('downloaded_at', 'text')
    .execute();
  await db.schema.createIndex('rights_exports_request').on('rights_exports').columns(['request_id']).execute();
  await db.schema.createIndex('rights_exports_customer').on('rights_exports').columns(['customer_id', 'expires_at']).execute();

  await db.schema
    .createTable('rights_restrictions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('customer_id', 'text', (c) => c.notNull())
    .addColumn('request_id', 'text', (c) => c.notNull())
    .addColumn('started_at', 'text', (c) => c.notNull())
    .addColumn('allowed_purposes', 'text', (c) => c.notNull().defaultTo('[]'))
    .addColumn('lift_reason', 'text')
    .addColumn('lift_noticed_at', 'text')
    .addColumn('lifts_at', 'text')
    .execute();
  await db.schema.createIndex('rights_restrictions_customer').on('rights_restrictions').columns(['customer_id', 'lifts_at']).execute();
  // At most one restriction in force per customer that has no end set.
  await sql`CREATE UNIQUE INDEX rights_restrictions_open ON rights_restrictions (customer_id) WHERE lifts_at IS NULL`.execute(db);

  await db.schema
    .createTable('shopify_webhooks')
    .addColumn('webhook_id', 'text', (c) => c.primaryKey())
    .addColumn('topic', 'text', (c) => c.notNull())
    .addColumn('shop_domain', 'text', (c) => c.notNull())
    .addColumn('received_at', 'text', (c) => c.notNull())
    .addColumn('outcome', 'text', (c) => c.notNull())
    .addColumn('request_id', 'text')
    .execute();

  await db.schema
    .createTable('shop_erasures')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('shop_domain', 'text', (c) => c.notNull())
    .addColumn('webhook_id', 'text', (c) => c.notNull())
    .addColumn('received_at', 'text', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('approved_by', 'text')
    .addColumn('approved_at', 'text')
    .addColumn('confirmed_by', 'text')
    .addColumn('confirmed_at', 'text')
    .addColumn('completed_at', 'text')
    .addColumn('customers_erased', 'integer', (c) => c.notNull().defaultTo(0))
    .execute();
}
