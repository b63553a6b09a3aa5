import { sql, type Kysely } from 'kysely';
import type { Clock } from '../../kernel/clock.ts';
import { fail } from '../../kernel/errors.ts';
import { isId, newId } from '../../kernel/ids.ts';
import type { Database } from '../../store/schema.ts';
import type { Alert, AlertActor, AlertLookup, AlertStatus, Severity } from './contracts.ts';
import { DetectionErrors } from './errors.ts';

/**
 * The alerts table: one alert per incident of a rule. An incident is a rule and what it is about
 * (`incident`: an actor, a source, a honeytoken and its toucher); while it goes on (seen again
 * within the rule's window) it extends its alert (count, last seen). A new alert's `dedupe_key`
 * is the incident and its window, unique in the table, so two server processes that see the same
 * incident at once store one alert, and only the process whose insert won takes the actions.
 */
export const ALERT_ID_PREFIX = 'alr';

export interface Candidate {
  readonly rule: string;
  readonly severity: Severity;
  readonly title: string;
  readonly actor: AlertActor | null;
  readonly source: string | null;
  readonly incident: string;
  readonly windowMs: number;
  readonly count: number;
  /** `max`: the count is a window's figure; `sum`: each candidate adds its count. */
  readonly merge: 'max' | 'sum';
  readonly detail: Readonly<Record<string, string | number | boolean | null>>;
  readonly at: Date;
}

export interface AlertPage {
  readonly data: Alert[];
  readonly next_before: string | null;
}

export interface AlertStore extends AlertLookup {
  /** The incident's open alert extended, or a new alert (`created`): only then do its actions run. */
  raise(c: Candidate): Promise<{ alert: Alert; created: boolean }>;
  /** Adds to an alert this process knows is current (count, last seen). */
  extend(id: string, count: number, merge: 'max' | 'sum', at: Date): Promise<void>;
  setActions(id: string, actions: readonly string[]): Promise<Alert>;
  list(filter: { status?: AlertStatus | undefined; rule?: string | undefined; limit: number; before?: string | undefined }): Promise<AlertPage>;
  /** `changed`: it was open and is acknowledged now (acknowledging again changes nothing). */
  acknowledge(id: string, by: string, note: string | undefined): Promise<{ alert: Alert; changed: boolean }>;
  close(id: string, by: string, note: string): Promise<Alert>;
}

type Row = Database['detection_alerts'];

export function toAlert(r: Row): Alert {
  return {
    id: r.id,
    rule: r.rule,
    severity: r.severity as Severity,
    status: r.status as AlertStatus,
    title: r.title,
    actor: r.actor_kind === null || r.actor_id === null ? null : { kind: r.actor_kind as AlertActor['kind'], id: r.actor_id, name: r.actor_name },
    source: r.source,
    count: r.count,
    detail: JSON.parse(r.detail) as Alert['detail'],
    actions: JSON.parse(r.actions) as string[],
    first_seen: r.first_seen,
    last_seen: r.last_seen,
    acknowledged_by: r.acknowledged_by,
    acknowledged_at: r.acknowledged_at,
    closed_by: r.closed_by,
    closed_at: r.closed_at,
    note: r.note,
  };
}

export function createAlertStore(deps: { db: Kysely<Database>; clock: Clock }): AlertStore {
  const { db, clock } = deps;

  async function row(id: string): Promise<Row | undefined> {
    if (!isId(ALERT_ID_PREFIX, id)) return undefined;
    return db.selectFrom('detection_alerts').selectAll().where('id', '=', id).executeTakeFirst();
  }

  async function found(id: string): Promise<Row> {
    const r = await row(id);
    if (r === undefined) fail(DetectionErrors.DETECTION_ALERT_NOT_FOUND, 'no alert with that id');
    return r;
  }

  async function extend(where: { id: string } | { dedupe: string }, count: number, merge: 'max' | 'sum', at: Date): Promise<void> {
    const iso = at.toISOString();
    let q = db
      .updateTable('detection_alerts')
      .set((eb) => ({
        count: merge === 'sum' ? eb('count', '+', count) : sql<number>`CASE WHEN count < ${count} THEN ${count} ELSE count END`,
        last_seen: sql<string>`CASE WHEN last_seen < ${iso} THEN ${iso} ELSE last_seen END`,
      }));
    q = 'id' in where ? q.where('id', '=', where.id) : q.where('dedupe_key', '=', where.dedupe);
    await q.execute();
  }

  return {
    async raise(c) {
      const incidentKey = `${c.rule}|${c.incident}`;
      const current = await db
        .selectFrom('detection_alerts')
        .select('id')
        .where('incident_key', '=', incidentKey)
        .where('status', '!=', 'closed')
        .where('last_seen', '>=', new Date(c.at.getTime() - c.windowMs).toISOString())
        .orderBy('last_seen', 'desc')
        .limit(1)
        .executeTakeFirst();
      if (current !== undefined) {
        await extend({ id: current.id }, c.count, c.merge, c.at);
        return { alert: toAlert(await found(current.id)), created: false };
      }
      const dedupe = `${incidentKey}|${Math.floor(c.at.getTime() / c.windowMs)}`;
      const at = c.at.toISOString();
      const inserted = await db
        .insertInto('detection_alerts')
        .values({
          id: newId(ALERT_ID_PREFIX, clock.now().getTime()),
          rule: c.rule,
          severity: c.severity,
          status: 'open',
          title: c.title,
          actor_kind: c.actor?.kind ?? null,
          actor_id: c.actor?.id ?? null,
          actor_name: c.actor?.name ?? null,
          source: c.source,
          count: c.count,
          detail: JSON.stringify(c.detail),
          actions: '[]',
          incident_key: incidentKey,
          dedupe_key: dedupe,
          first_seen: at,
          last_seen: at,
          acknowledged_by: null,
          acknowledged_at: null,
          closed_by: null,
          closed_at: null,
          note: null,
        })
        .onConflict((oc) => oc.column('dedupe_key').doNothing())
        .executeTakeFirst();
      if (Number(inserted.numInsertedOrUpdatedRows ?? 0) === 0) await extend({ dedupe }, c.count, c.merge, c.at);
      const stored = await db.selectFrom('detection_alerts').selectAll().where('dedupe_key', '=', dedupe).executeTakeFirstOrThrow();
      return { alert: toAlert(stored), created: Number(inserted.numInsertedOrUpdatedRows ?? 0) > 0 };
    },

    extend: (id, count, merge, at) => extend({ id }, count, merge, at),

    async setActions(id, actions) {
      await db.updateTable('detection_alerts').set({ actions: JSON.stringify(actions) }).where('id', '=', id).execute();
      return toAlert(await found(id));
    },

    async get(id) {
      const r = await row(id);
      return r === undefined ? undefined : toAlert(r);
    },

    async list({ status, rule, limit, before }) {
      let q = db.selectFrom('detection_alerts').selectAll().orderBy('id', 'desc').limit(limit + 1);
      if (status !== undefined) q = q.where('status', '=', status);
      if (rule !== undefined) q = q.where('rule', '=', rule);
      if (before !== undefined) q = q.where('id', '<', before);
      const rows = await q.execute();
      const page = rows.slice(0, limit);
      return { data: page.map(toAlert), next_before: rows.length > limit ? (page.at(-1)?.id ?? null) : null };
    },

    async acknowledge(id, by, note) {
      const r = await found(id);
      if (r.status === 'closed') fail(DetectionErrors.DETECTION_ALERT_CLOSED, 'the alert is closed');
      const updated = await db
        .updateTable('detection_alerts')
        .set({ status: 'acknowledged', acknowledged_by: by, acknowledged_at: clock.now().toISOString(), ...(note === undefined ? {} : { note }) })
        .where('id', '=', id)
        .where('status', '=', 'open')
        .executeTakeFirst();
      return { alert: toAlert(await found(id)), changed: Number(updated.numUpdatedRows) > 0 };
    },

    async close(id, by, note) {
      const r = await found(id);
      if (r.status === 'closed') fail(DetectionErrors.DETECTION_ALERT_CLOSED, 'the alert is closed already');
      await db
        .updateTable('detection_alerts')
        .set({ status: 'closed', closed_by: by, closed_at: clock.now().toISOString(), note })
        .where('id', '=', id)
        .where('status', '!=', 'closed')
        .execute();
      return toAlert(await found(id));
    },
  };
}
