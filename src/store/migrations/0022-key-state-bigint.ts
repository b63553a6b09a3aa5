import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

/**
 * `key_state.value` holds times in milliseconds (the start of a data-key rotation, so a killed
 * `custos keys rotate --data-keys` resumes where it stopped): PostgreSQL's `integer` cannot hold
 * them, so the column becomes `bigint` there. SQLite's integer is already 64-bit.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  if (dialect === 'postgres') await sql`ALTER TABLE key_state ALTER COLUMN value TYPE bigint`.execute(db);
}
