import type { Kysely } from 'kysely';
import type { Dialect } from '../database.ts';

/**
 * Client addresses stay out of the append-only audit log; detection's pruned tables resolve them.
 * `detection_sources` gains an index by source, so an incident scoped by a source address finds
 * the actors seen from it (src/modules/incidents, blast radius). `detection_origins` holds the
 * origin of each card request (PCI DSS 4.0.1 10.2.2): the request id its audit entries carry, the
 * source, the actor, when; pruned after a year (10.5.1). Runs unchanged on SQLite and PostgreSQL.
 */
export async function up(db: Kysely<unknown>, _dialect: Dialect): Promise<void> {
  await db.schema.createIndex('detection_sources_source').on('detection_sources').columns(['source', 'last_seen']).execute();
  await db.schema
    .createTable('detection_origins')
    .addColumn('request_id', 'text', (c) => c.primaryKey())
    .addColumn('source', 'text', (c) => c.notNull())
    .addColumn('actor', 'text')
    .addColumn('at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('detection_origins_at').on('detection_origins').column('at').execute();
}
