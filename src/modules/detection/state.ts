import { randomUUID } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Dialect } from '../../store/database.ts';
import { channelSql } from '../../store/notify.ts';
import type { Database } from '../../store/schema.ts';

/**
 * Detection's named values (detection_state): when learning started, this installation's id (the
 * prefix of its Redis keys), and the generation of blocks and honeytokens. Every change of those
 * sets a new generation and, on PostgreSQL, notifies `custos_detection` in the same transaction,
 * so every server reloads exactly when something changed (and, on a lost notification or on
 * SQLite, at its next look at the generation).
 */
export const DETECTION_CHANNEL = 'custos_detection';

/** The value of `name`, set to `initial` by the first process that asks. */
export async function stateValue(db: Kysely<Database>, name: string, initial: string): Promise<string> {
  await db.insertInto('detection_state').values({ name, value: initial }).onConflict((oc) => oc.column('name').doNothing()).execute();
  const row = await db.selectFrom('detection_state').select('value').where('name', '=', name).executeTakeFirstOrThrow();
  return row.value;
}

export async function generation(db: Kysely<Database>): Promise<string | undefined> {
  return (await db.selectFrom('detection_state').select('value').where('name', '=', 'generation').executeTakeFirst())?.value;
}

/** Runs `change` and moves the generation on in one transaction; PostgreSQL tells every listening server at commit. */
export async function changeShared<T>(db: Kysely<Database>, dialect: Dialect, change: (tx: Kysely<Database>) => Promise<T>): Promise<T> {
  return db.transaction().execute(async (tx) => {
    const out = await change(tx);
    const value = randomUUID();
    await tx
      .insertInto('detection_state')
      .values({ name: 'generation', value })
      .onConflict((oc) => oc.column('name').doUpdateSet({ value }))
      .execute();
    if (dialect === 'postgres') await sql`SELECT pg_notify(${sql.raw(channelSql(DETECTION_CHANNEL))}, '')`.execute(tx);
    return out;
  });
}
