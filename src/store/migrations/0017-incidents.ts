import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

/**
 * The incident register (src/modules/incidents/tables.ts): one row per incident, one per timeline
 * entry, one per Art. 33 reminder sent (its primary key makes each reminder go out once, whichever
 * process sends it). Free text (title, description, consequences, measures, notes) is sealed;
 * ids, statuses, severities and times are in clear for listing and the reminder scan.
 *
 * Also `audit_log_actor_at`: the audit log by actor and time, so that an incident's blast radius
 * (every entry of one actor in a time window) reads one index range instead of the whole log
 * (target: 1,000,000 entries in under 2 s on SQLite and PostgreSQL; bench/blast-radius.ts).
 * Runs unchanged on SQLite and PostgreSQL.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('incidents')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('severity', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('origin', 'text', (c) => c.notNull())
    .addColumn('origin_ref', 'text')
    .addColumn('aware_at', 'text', (c) => c.notNull())
    .addColumn('deadline_at', 'text', (c) => c.notNull())
    .addColumn('notified_at', 'text')
    .addColumn('closed_at', 'text')
    .addColumn('scope_actor_kind', 'text')
    .addColumn('scope_actor_id', 'text')
    .addColumn('scope_from', 'text')
    .addColumn('scope_to', 'text')
    .addColumn('exposure', 'text', (c) => c.notNull())
    .addColumn('sealed', 'text', (c) => c.notNull())
    .addColumn('created_by', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('incidents_clock').on('incidents').columns(['status', 'deadline_at']).execute();
  await db.schema.createIndex('incidents_origin').on('incidents').columns(['origin', 'origin_ref']).execute();
  await db.schema
    .createTable('incident_timeline')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('incident_id', 'text', (c) => c.notNull())
    .addColumn('seq', 'integer', (c) => c.notNull())
    .addColumn('at', 'text', (c) => c.notNull())
    .addColumn('recorded_at', 'text', (c) => c.notNull())
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('detail', 'text', (c) => c.notNull())
    .addColumn('sealed', 'text')
    .execute();
  await db.schema.createIndex('incident_timeline_seq').on('incident_timeline').columns(['incident_id', 'seq']).unique().execute();
  await db.schema
    .createTable('incident_reminders')
    .addColumn('incident_id', 'text', (c) => c.notNull())
    .addColumn('hours', 'integer', (c) => c.notNull())
    .addColumn('sent_at', 'text', (c) => c.notNull())
    .addColumn('recipients', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('incident_reminders_pk', ['incident_id', 'hours'])
    .execute();
  await db.schema.createIndex('audit_log_actor_at').on('audit_log').columns(['actor', 'at']).execute();
}
