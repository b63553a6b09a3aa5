import { sql, type Kysely, type RawBuilder } from 'kysely';
import type { Dialect } from '../database.ts';

/** `column IN ('a', 'b')` with literals: DDL takes no bound parameters on PostgreSQL. */
function sqlIn(column: string, values: readonly string[]): RawBuilder<unknown> {
  return sql`${sql.ref(column)} IN (${sql.join(values.map((v) => sql.lit(v)))})`;
}

/**
 * Staff role changes that wait for a second admin (src/modules/staff/role-changes.ts): a role
 * defined or widened, or a role given to a member. Each row keeps what was asked and the state it
 * was asked against, so an approval applies exactly what was reviewed. Runs unchanged on both
 * dialects.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('staff_role_changes')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('kind', 'text', (c) => c.notNull().check(sqlIn('kind', ['define', 'assign'])))
    .addColumn('role', 'text', (c) => c.notNull())
    .addColumn('member_id', 'text', (c) => c.references('staff_members.id').onDelete('cascade'))
    .addColumn('description', 'text')
    .addColumn('purposes', 'text')
    .addColumn('permissions', 'text')
    .addColumn('base', 'text')
    .addColumn('status', 'text', (c) => c.notNull().check(sqlIn('status', ['pending', 'applied', 'denied'])))
    .addColumn('requested_by', 'text', (c) => c.notNull())
    .addColumn('requested_at', 'text', (c) => c.notNull())
    .addColumn('decided_by', 'text')
    .addColumn('decided_at', 'text')
    .execute();
  await db.schema.createIndex('staff_role_changes_status').on('staff_role_changes').columns(['status', 'requested_at']).execute();
}
