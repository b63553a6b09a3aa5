import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

/**
 * The card vault (src/modules/cards/). One row per token: the PAN, expiry and cardholder name
 * sealed together under a card-vault key version (`key_version`); brand, BIN and last four in
 * clear (PCI DSS 3.4.1 allows them shown); `fingerprint` the keyed hash of the PAN under the
 * card-index key version `fingerprint_version` (PCI DSS 3.5.1.1), set only in deterministic mode.
 * A deleted card keeps its token and `deleted_at`, nothing else. The CVV has no column: it is
 * never written to disk (PCI DSS 3.3.1). `card_reveals` records each staff reveal and its reason
 * (sealed). Runs unchanged on SQLite and PostgreSQL.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('cards')
    .addColumn('token', 'text', (c) => c.primaryKey())
    .addColumn('customer_id', 'text')
    .addColumn('brand', 'text')
    .addColumn('bin', 'text')
    .addColumn('last4', 'text')
    .addColumn('expires_at', 'text')
    .addColumn('key_version', 'integer')
    .addColumn('sealed', 'text')
    .addColumn('fingerprint', 'text')
    .addColumn('fingerprint_version', 'integer')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('deleted_at', 'text')
    // 'delete' (DELETE /v1/cards) or 'expiry' (the sweep), for the retention report.
    .addColumn('removed_by', 'text')
    .execute();
  await db.schema.createIndex('cards_fingerprint').on('cards').column('fingerprint').execute();
  await db.schema.createIndex('cards_customer').on('cards').column('customer_id').execute();
  await db.schema.createIndex('cards_key_version').on('cards').column('key_version').execute();
  await db.schema.createIndex('cards_expires_at').on('cards').column('expires_at').execute();
  await db.schema.createIndex('cards_deleted_at').on('cards').column('deleted_at').execute();
  // Every staff reveal of a PAN with its stated reason, sealed under a card-vault key version.
  await db.schema
    .createTable('card_reveals')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('token', 'text', (c) => c.notNull())
    .addColumn('member_id', 'text', (c) => c.notNull())
    .addColumn('key_version', 'integer', (c) => c.notNull())
    .addColumn('reason', 'text', (c) => c.notNull())
    .addColumn('at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('card_reveals_token').on('card_reveals').column('token').execute();
}
