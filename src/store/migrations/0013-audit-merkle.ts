import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

/**
 * The audit log's Merkle tree (docs/adr/0004-audit-merkle-log.md): the leaves in the order the
 * tree builder admitted them (each entry at most once: `entry_id` is unique; leaf 0 commits to
 * the chained log that came before), every perfect subtree's hash (`level`, `idx`) so a proof
 * reads O(log n) rows, the signed tree heads, the entries the builder refused, and the builder's
 * lease (one builder at a time). Nothing here is updated after it is written, except the lease.
 * Runs unchanged on SQLite and PostgreSQL.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const big = dialect === 'postgres' ? 'bigint' : 'integer';
  await db.schema
    .createTable('audit_tree_leaves')
    .addColumn('leaf_index', big, (c) => c.primaryKey())
    .addColumn('entry_id', big, (c) => c.unique())
    .addColumn('leaf_hash', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('audit_tree_nodes')
    .addColumn('level', 'integer', (c) => c.notNull())
    .addColumn('idx', big, (c) => c.notNull())
    .addColumn('hash', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('audit_tree_nodes_pk', ['level', 'idx'])
    .execute();
  await db.schema
    .createTable('audit_tree_heads')
    .addColumn('tree_size', big, (c) => c.primaryKey())
    .addColumn('root_hash', 'text', (c) => c.notNull())
    .addColumn('timestamp', 'text', (c) => c.notNull())
    .addColumn('key_id', 'text', (c) => c.notNull())
    .addColumn('signature', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('audit_tree_refused')
    .addColumn('entry_id', big, (c) => c.primaryKey())
    .addColumn('reason', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('audit_tree_lease')
    .addColumn('id', 'integer', (c) => c.primaryKey())
    .addColumn('holder', 'text', (c) => c.notNull())
    .addColumn('expires_ms', big, (c) => c.notNull())
    // The chain head leaf 0 commits to: chained entries up to it are covered by that leaf.
    .addColumn('legacy_seq', big)
    .execute();
  await sql`INSERT INTO audit_tree_lease (id, holder, expires_ms) VALUES (1, '', 0)`.execute(db);
}
