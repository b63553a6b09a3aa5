import type { KeyVersions } from '../../crypto/key-versions.ts';
import type { Transaction } from 'kysely';
import { newId } from '../../kernel/ids.ts';
import type { Dialect } from '../../store/database.ts';
import type { Database } from '../../store/schema.ts';
import { sealText } from '../staff/keys.ts';
import { timelineAad } from './keys.ts';
import type { Detail } from './view.ts';

export interface TimelineEntry {
  readonly actor: string;
  /** opened, status, note, update, reminder, export. */
  readonly kind: string;
  /** When it happened; default: now. */
  readonly at?: string | undefined;
  readonly detail?: Detail;
  /** Free text, sealed under the incident key. */
  readonly note?: string | undefined;
}

/**
 * Appends one timeline entry in the caller's transaction, numbered after the incident's last one.
 * On PostgreSQL the incident's row is locked first, so two writers to one incident take turns;
 * SQLite transactions already hold the write lock from their start (BEGIN IMMEDIATE).
 */
export async function appendTimeline(tx: Transaction<Database>, deps: { dialect: Dialect; key: KeyVersions; now: Date }, incidentId: string, entry: TimelineEntry): Promise<void> {
  if (deps.dialect === 'postgres') await tx.selectFrom('incidents').select('id').where('id', '=', incidentId).forUpdate().execute();
  const last = await tx.selectFrom('incident_timeline').select((eb) => eb.fn.max('seq').as('seq')).where('incident_id', '=', incidentId).executeTakeFirst();
  const id = newId('itl', deps.now.getTime());
  await tx
    .insertInto('incident_timeline')
    .values({
      id,
      incident_id: incidentId,
      seq: Number(last?.seq ?? 0) + 1,
      at: entry.at ?? deps.now.toISOString(),
      recorded_at: deps.now.toISOString(),
      actor: entry.actor,
      kind: entry.kind,
      detail: JSON.stringify(entry.detail ?? {}),
      sealed: entry.note === undefined ? null : sealText(deps.key, timelineAad(incidentId, id), entry.note),
    })
    .execute();
}
