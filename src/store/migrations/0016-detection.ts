import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

/**
 * Detection (src/modules/detection/tables.ts): alerts (one per incident of a rule: an incident
 * (rule and actor) still active extends its alert, and `dedupe_key` — the incident and its
 * window — is unique, so two server processes raising the same alert store it once), hourly activity
 * counters per actor (the learned usual rates and hours), the sources each staff account was seen
 * from and the blocked sources (both pruned: client addresses never enter the append-only audit
 * log), the planted honeytokens, and a few named values (the learning period's start, the
 * generation that tells other processes to reload blocks and honeytokens). API keys gain
 * `suspended_at`: a reversible suspension, unlike a revocation. Runs unchanged on SQLite and
 * PostgreSQL.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema
    .createTable('detection_alerts')
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('rule', 'text', (c) => c.notNull())
    .addColumn('severity', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('title', 'text', (c) => c.notNull())
    .addColumn('actor_kind', 'text')
    .addColumn('actor_id', 'text')
    .addColumn('actor_name', 'text')
    .addColumn('source', 'text')
    .addColumn('count', 'integer', (c) => c.notNull())
    .addColumn('detail', 'text', (c) => c.notNull())
    .addColumn('actions', 'text', (c) => c.notNull())
    .addColumn('incident_key', 'text', (c) => c.notNull())
    .addColumn('dedupe_key', 'text', (c) => c.notNull().unique())
    .addColumn('first_seen', 'text', (c) => c.notNull())
    .addColumn('last_seen', 'text', (c) => c.notNull())
    .addColumn('acknowledged_by', 'text')
    .addColumn('acknowledged_at', 'text')
    .addColumn('closed_by', 'text')
    .addColumn('closed_at', 'text')
    .addColumn('note', 'text')
    .execute();
  await db.schema.createIndex('detection_alerts_status').on('detection_alerts').columns(['status', 'id']).execute();
  await db.schema.createIndex('detection_alerts_rule').on('detection_alerts').columns(['rule', 'id']).execute();
  await db.schema.createIndex('detection_alerts_incident').on('detection_alerts').columns(['incident_key', 'last_seen']).execute();
  await db.schema
    .createTable('detection_activity')
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('hour', 'text', (c) => c.notNull())
    .addColumn('counter', 'text', (c) => c.notNull())
    .addColumn('n', 'integer', (c) => c.notNull())
    .addPrimaryKeyConstraint('detection_activity_pk', ['actor', 'counter', 'hour'])
    .execute();
  await db.schema.createIndex('detection_activity_hour').on('detection_activity').column('hour').execute();
  await db.schema
    .createTable('detection_sources')
    .addColumn('actor', 'text', (c) => c.notNull())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('first_seen', 'text', (c) => c.notNull())
    .addColumn('last_seen', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('detection_sources_pk', ['actor', 'source'])
    .execute();
  await db.schema.createIndex('detection_sources_last_seen').on('detection_sources').column('last_seen').execute();
  await db.schema
    .createTable('detection_blocks')
    .addColumn('source', 'text', (c) => c.primaryKey())
    .addColumn('until', 'text', (c) => c.notNull())
    .addColumn('alert_id', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('detection_honeytokens')
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('ref', 'text', (c) => c.notNull())
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('detection_honeytokens_pk', ['kind', 'ref'])
    .execute();
  await db.schema
    .createTable('detection_state')
    .addColumn('name', 'text', (c) => c.primaryKey())
    .addColumn('value', 'text', (c) => c.notNull())
    .execute();
  await db.schema.alterTable('api_keys').addColumn('suspended_at', 'text').execute();
}
