import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

/**
 * Card sessions and the collection page's record (src/modules/cards/sessions.ts,
 * collect-page.ts). `card_sessions`: one row per publishable key a shop backend minted for a
 * checkout — the HMAC of its secret (never the key), the storefront origin, customer and token
 * format it is bound to, when it expires, and once spent when and which token it produced.
 * `card_collect_page`: the SHA-256 of each part of the card-collection page (HTML, script,
 * stylesheet, response headers) as last served, so a server start that serves something else
 * records the change (PCI DSS 4.0.1 11.6.1). Runs unchanged on SQLite and PostgreSQL.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('card_sessions')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('secret_hash', 'text', (c) => c.notNull())
    // The actor that minted it ('apikey:key_…').
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('origin', 'text', (c) => c.notNull())
    .addColumn('customer_id', 'text')
    .addColumn('token_format', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('expires_at', 'text', (c) => c.notNull())
    .addColumn('used_at', 'text')
    .addColumn('card_token', 'text')
    .execute();
  await db.schema.createIndex('card_sessions_expires_at').on('card_sessions').column('expires_at').execute();
  await db.schema
    .createTable('card_collect_page')
    .addColumn('part', 'text', (c) => c.primaryKey())
    .addColumn('sha256', 'text', (c) => c.notNull())
    .addColumn('recorded_at', 'text', (c) => c.notNull())
    .execute();
}
