import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

/**
 * Records sealed whole (docs/adr/0003-record-envelope.md):
 * - `records.version`: the record version, incremented by every write and bound into the record's
 *   envelope; 0 for a record written before this migration and not written since;
 * - `audit_log.record_version`: the record version a write produced (NULL for every other entry),
 *   so that `custos audit verify --records` can tell a record rolled back to an older envelope;
 * - `vault_state`: `resealed` = 1 once every record is in the envelope format (`custos keys
 *   reseal`); from then on the per-field format is refused.
 * The conversion itself is not done here: it is a resumable job, not part of every start.
 * Runs unchanged on SQLite and PostgreSQL.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema.alterTable('records').addColumn('version', 'integer', (c) => c.notNull().defaultTo(0)).execute();
  await db.schema.alterTable('audit_log').addColumn('record_version', 'integer').execute();
  await db.schema
    .createTable('vault_state')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('value', 'integer', (c) => c.notNull())
    .execute();
}
