import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

/**
 * Audit entries are written once (docs/adr/0004-audit-merkle-log.md): the chaining pass that
 * rewrote every entry with seq, prev_hash and hash is gone, and the tree builder admits entries
 * from the queue of migration 0018. What only served that rewrite goes:
 * - `audit_log_pending`, the partial index of entries waiting to be chained (every insert entered
 *   it, every chaining pass removed it);
 * - on PostgreSQL, the unique constraint on `seq` (an index entry for every insert, NULL for every
 *   entry since) becomes a unique index over the chained entries only (`seq IS NOT NULL`), which
 *   still serves the verification of the chain of earlier versions in seq order. SQLite cannot
 *   drop a column's UNIQUE without copying the table; its NULL entries stay.
 * The columns seq, prev_hash, hash and rejected stay: the chained history keeps its chain.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  await sql`DROP INDEX IF EXISTS audit_log_pending`.execute(db);
  if (dialect === 'postgres') {
    await sql`ALTER TABLE audit_log DROP CONSTRAINT IF EXISTS audit_log_seq_key`.execute(db);
    await sql`CREATE UNIQUE INDEX audit_log_seq ON audit_log (seq) WHERE seq IS NOT NULL`.execute(db);
  }
}
