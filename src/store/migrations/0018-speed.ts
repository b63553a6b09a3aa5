import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

/**
 * What the speed work needed in the schema (docs/adr/0004-audit-merkle-log.md, "The builder"):
 *
 * `audit_tree_pending`: the ids of audit entries the tree builder has not decided yet (neither a
 * leaf nor refused). A trigger on `audit_log` fills it in the inserting statement itself, on every
 * path that inserts entries (reads' group commits, writes' own statements, the CLI, tests), so no
 * entry can be left out by a caller; the builder reads it in id order, decides, and deletes what
 * it decided in the same transaction. The builder no longer searches the whole log for entries
 * without a leaf on every pass (a scan that grew with the log), and PostgreSQL entries that commit
 * out of id order are found whenever they commit. Existing undecided entries are queued here.
 */
export async function up(db: Kysely<unknown>, dialect: Dialect): Promise<void> {
  const big = dialect === 'postgres' ? 'bigint' : 'integer';
  await db.schema
    .createTable('audit_tree_pending')
    .addColumn('entry_id', big, (c) => c.primaryKey())
    .execute();
  if (dialect === 'postgres') {
    // The schema named once, at creation: the function then inserts into this schema's queue
    // whatever search_path the inserting session has.
    const schema = (await sql<{ s: string }>`SELECT current_schema() AS s`.execute(db)).rows[0]?.s ?? 'public';
    const queue = `"${schema.replaceAll('"', '""')}".audit_tree_pending`;
    await sql
      .raw(
        `CREATE FUNCTION audit_tree_queue() RETURNS trigger LANGUAGE plpgsql AS $$
         BEGIN
           INSERT INTO ${queue} (entry_id) SELECT id FROM new_entries;
           RETURN NULL;
         END $$`,
      )
      .execute(db);
    // Once per statement, over all the rows it inserted (a batch of reads' entries is one statement).
    await sql`CREATE TRIGGER audit_log_queue AFTER INSERT ON audit_log REFERENCING NEW TABLE AS new_entries FOR EACH STATEMENT EXECUTE FUNCTION audit_tree_queue()`.execute(db);
  } else {
    await sql`CREATE TRIGGER audit_log_queue AFTER INSERT ON audit_log BEGIN INSERT INTO audit_tree_pending (entry_id) VALUES (new.id); END`.execute(db);
  }
  // Entries not yet decided. Chained entries that leaf 0 covers (seq up to legacy_seq) are not
  // leaves of their own; the builder drops them from the queue, so they need not be left out here.
  await sql`
    INSERT INTO audit_tree_pending (entry_id)
    SELECT l.id FROM audit_log l
    WHERE NOT EXISTS (SELECT 1 FROM audit_tree_leaves t WHERE t.entry_id = l.id)
      AND NOT EXISTS (SELECT 1 FROM audit_tree_refused r WHERE r.entry_id = l.id)
      AND (l.seq IS NULL OR l.seq > COALESCE((SELECT legacy_seq FROM audit_tree_lease WHERE id = 1), -1))`.execute(db);
}
