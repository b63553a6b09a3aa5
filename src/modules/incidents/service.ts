import type { KeyVersions } from '../../crypto/key-versions.ts';
import type { Kysely, Transaction } from 'kysely';
import type { z } from 'zod';
import type { Clock } from '../../kernel/clock.ts';
import { AppError, fail } from '../../kernel/errors.ts';
import { isId, newId } from '../../kernel/ids.ts';
import type { Dialect } from '../../store/database.ts';
import type { Database } from '../../store/schema.ts';
import { actorActivity } from '../audit/activity.ts';
import type { AuditLog } from '../audit/service.ts';
import type { AlertLookup } from '../detection/contracts.ts';
import type { Inventory } from '../inventory/index.ts';
import type { Directory } from '../staff/directory.ts';
import { sealText } from '../staff/keys.ts';
import { appendTimeline, type TimelineEntry } from './timeline.ts';
import { operatorRef, type Operator } from '../staff/ports.ts';
import type { ReportService } from '../staff/report-service.ts';
import { deadlineOf } from './art33.ts';
import { countActivity } from './blast-radius.ts';
import { renderDrafts, type Controller, type Drafts } from './drafts.ts';
import { IncidentErrors } from './errors.ts';
import { incidentAad } from './keys.ts';
import { NO_EXPOSURE, type Exposure, type KeyFacts } from './protection.ts';
import { buildReport, type ActorRef, type BlastRadiusReport } from './report.ts';
import {
  auditActorOf,
  canonicalActorId,
  NoteSchema,
  OpenSchema,
  RadiusQuerySchema,
  StatusSchema,
  UpdateSchema,
  type IncidentStatus,
  type NoteInput,
  type OpenInput,
  type RadiusQuery,
  type StatusInput,
  type UpdateInput,
} from './schemas.ts';
import { incidentView, openIncidentText, scopeOf, type IncidentRow, type IncidentText, type IncidentView, type ScopeView } from './view.ts';

/**
 * The incident register (GDPR Art. 33(5): the controller documents every personal data breach,
 * its facts, effects and the remedial action taken; PCI DSS 4.0.1 12.10.1: an incident response
 * plan). Every change is one transaction with its audit entry and its timeline entry; every read
 * is audited too, and the blast radius — a list of customers, so personal data — is given only to
 * holders of `incidents.manage` (or the CLI operator) and audited as `incidents.affected_read`.
 */
export const ALLOWED: Readonly<Record<IncidentStatus, readonly IncidentStatus[]>> = {
  open: ['contained', 'notified', 'closed'],
  contained: ['notified', 'closed'],
  notified: ['closed'],
  closed: ['open'],
};

/** How far before the first sign of trouble a default scope starts (the officer widens it as the facts demand). */
export const LOOKBACK_HOURS = 72;
const CLOCK_SKEW_MS = 60_000;

/**
 * The audit actors that used a source address in a window (detection's table of recent sources),
 * or since when that table keeps sources when the window starts before it.
 */
export type SourceActors = (source: string, window: { from: string; to: string }) => Promise<readonly string[] | { readonly keptSince: string }>;
/** Card brands → cards: of the given tokens, or of every stored card. */
export type CardBrands = (tokens: readonly string[] | 'all') => Promise<Record<string, number>>;

export interface IncidentServiceDeps {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  readonly clock: Clock;
  readonly audit: Pick<AuditLog, 'append' | 'appendInTx'>;
  readonly inventory: Inventory;
  readonly directory: Pick<Directory, 'authorize'>;
  /** deriveIncidentKey (keys.ts). */
  readonly key: KeyVersions;
  readonly alerts: AlertLookup;
  readonly reports: Pick<ReportService, 'find'>;
  /** Without it, a scope by source is refused (INCIDENTS_SOURCE_UNRESOLVED). */
  readonly sources?: SourceActors | undefined;
  readonly keyFacts: () => Promise<KeyFacts>;
  readonly cardBrands?: CardBrands | undefined;
  readonly controller: Controller;
}

export interface ExportBundle {
  readonly incident: IncidentView;
  readonly report: BlastRadiusReport | undefined;
  readonly drafts: Drafts;
  readonly exported_at: string;
  readonly exported_by: string;
}

export interface IncidentService {
  open(op: Operator, input: OpenInput, requestId?: string): Promise<IncidentView>;
  list(op: Operator, filter?: { status?: IncidentStatus | undefined; limit?: number | undefined; before?: string | undefined }, requestId?: string): Promise<IncidentView[]>;
  get(op: Operator, id: string, requestId?: string): Promise<IncidentView>;
  update(op: Operator, id: string, input: UpdateInput, requestId?: string): Promise<IncidentView>;
  setStatus(op: Operator, id: string, input: StatusInput, requestId?: string): Promise<IncidentView>;
  addNote(op: Operator, id: string, input: NoteInput, requestId?: string): Promise<IncidentView>;
  /** The blast radius of the incident's scope, or of the actor and window given. Audited: it lists customers. */
  blastRadius(op: Operator, id: string, query?: RadiusQuery, requestId?: string): Promise<BlastRadiusReport>;
  drafts(op: Operator, id: string, requestId?: string): Promise<Drafts>;
  /** Everything `custos incident export` writes: register entry, timeline, blast radius, drafts. */
  exportBundle(op: Operator, id: string, requestId?: string): Promise<ExportBundle>;
}

function parse<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const parsed = schema.safeParse(input);
  if (!parsed.success) {
    const field = parsed.error.issues[0]?.path.join('.') || 'body';
    fail(IncidentErrors.INCIDENTS_INVALID, `invalid incident input: ${field}`, { field });
  }
  return parsed.data;
}

export function createIncidentService(deps: IncidentServiceDeps): IncidentService {
  const { db, clock, audit, key } = deps;

  /** incidents.manage, or the CLI operator; a refusal is audited (ASVS 16.3.2). */
  async function authorize(op: Operator, action: string, id: string | null, requestId: string | undefined): Promise<string> {
    try {
      await deps.directory.authorize(op, 'incidents.manage');
    } catch (error) {
      if (error instanceof AppError)
        await audit.append({ actor: operatorRef(op), action, collection: 'incidents', recordId: id, outcome: 'denied', requestId: requestId ?? null });
      throw error;
    }
    return operatorRef(op);
  }

  function checkId(id: string): void {
    if (!isId('inc', id)) fail(IncidentErrors.INCIDENTS_NOT_FOUND, 'no incident with that id');
  }

  async function row(id: string, via: Kysely<Database> | Transaction<Database> = db): Promise<IncidentRow> {
    checkId(id);
    const found = await via.selectFrom('incidents').selectAll().where('id', '=', id).executeTakeFirst();
    if (found === undefined) fail(IncidentErrors.INCIDENTS_NOT_FOUND, 'no incident with that id');
    return found;
  }

  async function view(r: IncidentRow): Promise<IncidentView> {
    const timeline = await db.selectFrom('incident_timeline').selectAll().where('incident_id', '=', r.id).orderBy('seq').execute();
    return incidentView(key, r, timeline, clock.now());
  }

  const addTimeline = (tx: Transaction<Database>, incidentId: string, entry: TimelineEntry) => appendTimeline(tx, { dialect: deps.dialect, key, now: clock.now() }, incidentId, entry);

  function checkNotFuture(at: string, field: string): void {
    if (Date.parse(at) > clock.now().getTime() + CLOCK_SKEW_MS) fail(IncidentErrors.INCIDENTS_INVALID, `${field} lies in the future`, { field });
  }

  function scopeColumns(scope: { actor: { kind: ActorRef['kind']; id: string }; from: string; to?: string | null | undefined } | null) {
    if (scope === null) return { scope_actor_kind: null, scope_actor_id: null, scope_from: null, scope_to: null };
    const id = canonicalActorId(scope.actor.kind, scope.actor.id);
    if (id === undefined) fail(IncidentErrors.INCIDENTS_INVALID, `scope.actor.id is not a ${scope.actor.kind} id`, { field: 'scope.actor.id' });
    const to = scope.to ?? null;
    if (to !== null && to <= scope.from) fail(IncidentErrors.INCIDENTS_INVALID, 'scope.to must come after scope.from', { field: 'scope.to' });
    return { scope_actor_kind: scope.actor.kind, scope_actor_id: id, scope_from: scope.from, scope_to: to };
  }

  const exposureOf = (given: Partial<Exposure> | undefined, base: Exposure = NO_EXPOSURE): Exposure => ({
    database: given?.database ?? base.database,
    host: given?.host ?? base.host,
    root_key: given?.root_key ?? base.root_key,
  });
  const hoursBefore = (iso: string, hours: number) => new Date(Date.parse(iso) - hours * 3_600_000).toISOString();

  /** Title, severity and scope an alert or a report suggests, where the caller gave none. */
  async function originDefaults(input: z.output<typeof OpenSchema>): Promise<{ origin: IncidentRow['origin']; ref: string | null; title?: string; severity?: string; scope?: ScopeView }> {
    if (input.from_alert !== undefined && input.from_report !== undefined) fail(IncidentErrors.INCIDENTS_INVALID, 'give from_alert or from_report, not both', { field: 'from_report' });
    if (input.from_alert !== undefined) {
      const alert = await deps.alerts.get(input.from_alert);
      if (alert === undefined) fail(IncidentErrors.INCIDENTS_ORIGIN_NOT_FOUND, 'no alert with that id');
      const from = hoursBefore(alert.first_seen, LOOKBACK_HOURS);
      const a = alert.actor;
      const kind = a?.kind === 'staff' || a?.kind === 'apikey' || a?.kind === 'source' ? a.kind : alert.source !== null ? 'source' : undefined;
      const actorId = kind === undefined ? undefined : canonicalActorId(kind, a !== null && a.kind === kind ? a.id : (alert.source ?? ''));
      return {
        origin: 'alert',
        ref: alert.id,
        title: alert.title,
        severity: alert.severity,
        ...(kind === undefined || actorId === undefined ? {} : { scope: { actor: { kind, id: actorId }, from, to: null } }),
      };
    }
    if (input.from_report !== undefined) {
      const report = isId('rpt', input.from_report) ? await deps.reports.find(input.from_report) : undefined;
      if (report === undefined) fail(IncidentErrors.INCIDENTS_ORIGIN_NOT_FOUND, 'no staff threat report with that id');
      // The reporter's own account is the first suspect of a phishing mail or a lost device.
      return {
        origin: 'report',
        ref: report.id,
        title: `Staff threat report (${report.kind.replace('_', ' ')})`,
        severity: 'medium',
        scope: { actor: { kind: 'staff', id: report.reporterId }, from: hoursBefore(report.createdAt, LOOKBACK_HOURS), to: null },
      };
    }
    return { origin: 'manual', ref: null };
  }

  async function change(op: Operator, id: string, action: string, requestId: string | undefined, apply: (tx: Transaction<Database>, r: IncidentRow, actor: string) => Promise<{ fields: string[] }>): Promise<IncidentView> {
    const actor = await authorize(op, action, id, requestId);
    checkId(id);
    await db.transaction().execute(async (tx) => {
      const r = await row(id, tx);
      const { fields } = await apply(tx, r, actor);
      await audit.appendInTx(tx, { actor, action, collection: 'incidents', recordId: id, fields, outcome: 'success', requestId: requestId ?? null });
    });
    return view(await row(id));
  }

  async function radius(r: IncidentRow, query: z.output<typeof RadiusQuerySchema>): Promise<BlastRadiusReport> {
    const scope = scopeOf(r);
    const kind = query.actor_kind ?? scope?.actor.kind;
    const rawId = query.actor_id ?? (query.actor_kind === undefined ? scope?.actor.id : undefined);
    const from = query.from ?? scope?.from;
    const now = clock.now();
    const to = query.to ?? scope?.to ?? now.toISOString();
    if (kind === undefined || rawId === undefined || from === undefined) fail(IncidentErrors.INCIDENTS_SCOPE_REQUIRED, 'give actor_kind, actor_id and from, or set the incident scope');
    if (to <= from) fail(IncidentErrors.INCIDENTS_INVALID, 'to must come after from', { field: 'to' });
    const actorId = canonicalActorId(kind, rawId);
    if (actorId === undefined) fail(IncidentErrors.INCIDENTS_INVALID, `actor_id is not a ${kind} id`, { field: 'actor_id' });
    let actors: readonly string[];
    if (kind === 'source') {
      if (deps.sources === undefined) fail(IncidentErrors.INCIDENTS_SOURCE_UNRESOLVED, 'source addresses are not kept in the audit log; scope by staff member or API key');
      const found = await deps.sources(actorId, { from, to });
      if (!Array.isArray(found))
        fail(IncidentErrors.INCIDENTS_SOURCE_UNRESOLVED, `sources are kept for a limited time; this one can be resolved from ${(found as { keptSince: string }).keptSince} on: start the window there`, { field: 'from' });
      actors = [...new Set(found as readonly string[])].sort();
    } else actors = [auditActorOf(kind, actorId)];
    const activity = countActivity(deps.inventory, await actorActivity(db, { actors, from, to }));
    const exposure = JSON.parse(r.exposure) as Exposure;
    const atRest = exposure.database || exposure.host;
    const brands = deps.cardBrands === undefined ? {} : atRest ? await deps.cardBrands('all') : activity.card_tokens.size > 0 ? await deps.cardBrands([...activity.card_tokens]) : {};
    return buildReport({ inventory: deps.inventory, activity, actor: { kind, id: actorId }, actors, from, to, now, exposure, keys: await deps.keyFacts(), brands });
  }

  async function scopedReport(r: IncidentRow): Promise<BlastRadiusReport | undefined> {
    return scopeOf(r) === null ? undefined : radius(r, {});
  }

  return {
    async open(op, input, requestId) {
      const actor = await authorize(op, 'incidents.opened', null, requestId);
      const given = parse(OpenSchema, input);
      const defaults = await originDefaults(given);
      const title = given.title ?? defaults.title;
      const severity = given.severity ?? defaults.severity;
      if (title === undefined) fail(IncidentErrors.INCIDENTS_INVALID, 'an incident opened by hand needs a title', { field: 'title' });
      if (severity === undefined) fail(IncidentErrors.INCIDENTS_INVALID, 'an incident opened by hand needs a severity', { field: 'severity' });
      const now = clock.now();
      const awareAt = given.aware_at ?? now.toISOString();
      checkNotFuture(awareAt, 'aware_at');
      const scope = scopeColumns(given.scope ?? defaults.scope ?? null);
      const id = newId('inc', now.getTime());
      const text: IncidentText = { title, description: given.description ?? null, consequences: null, measures: null };
      await db.transaction().execute(async (tx) => {
        await tx
          .insertInto('incidents')
          .values({
            id,
            severity,
            status: 'open',
            origin: defaults.origin,
            origin_ref: defaults.ref,
            aware_at: awareAt,
            deadline_at: deadlineOf(new Date(awareAt)).toISOString(),
            notified_at: null,
            closed_at: null,
            ...scope,
            exposure: JSON.stringify(exposureOf(given.exposure)),
            sealed: sealText(key, incidentAad(id), JSON.stringify(text)),
            created_by: actor,
            created_at: now.toISOString(),
            updated_at: now.toISOString(),
          })
          .execute();
        await addTimeline(tx, id, { actor, kind: 'opened', detail: { origin: defaults.origin, ref: defaults.ref, severity } });
        await audit.appendInTx(tx, {
          actor,
          action: 'incidents.opened',
          collection: 'incidents',
          recordId: id,
          fields: ['severity', 'aware_at', ...(scope.scope_actor_kind === null ? [] : ['scope'])],
          outcome: 'success',
          requestId: requestId ?? null,
        });
      });
      return view(await row(id));
    },

    async list(op, filter = {}, requestId) {
      const actor = await authorize(op, 'incidents.read', null, requestId);
      const limit = Math.min(Math.max(filter.limit ?? 50, 1), 200);
      let q = db.selectFrom('incidents').selectAll();
      if (filter.status !== undefined) q = q.where('status', '=', filter.status);
      if (filter.before !== undefined) q = q.where('id', '<', filter.before);
      const rows = await q.orderBy('id', 'desc').limit(limit).execute();
      await audit.append({ actor, action: 'incidents.read', collection: 'incidents', fields: ['list'], outcome: 'success', requestId: requestId ?? null });
      const now = clock.now();
      return rows.map((r) => incidentView(key, r, [], now));
    },

    async get(op, id, requestId) {
      const actor = await authorize(op, 'incidents.read', id, requestId);
      const r = await row(id);
      await audit.append({ actor, action: 'incidents.read', collection: 'incidents', recordId: id, outcome: 'success', requestId: requestId ?? null });
      return view(r);
    },

    async update(op, id, input, requestId) {
      return change(op, id, 'incidents.updated', requestId, async (tx, r, actor) => {
        const given = parse(UpdateSchema, input);
        const text = openIncidentText(key, r);
        const next: IncidentText = {
          title: given.title ?? text.title,
          description: given.description === undefined ? text.description : given.description,
          consequences: given.consequences === undefined ? text.consequences : given.consequences,
          measures: given.measures === undefined ? text.measures : given.measures,
        };
        const fields = Object.keys(given).sort();
        const set: Partial<IncidentRow> = { sealed: sealText(key, incidentAad(id), JSON.stringify(next)), updated_at: clock.now().toISOString() };
        if (given.severity !== undefined) set.severity = given.severity;
        if (given.aware_at !== undefined) {
          checkNotFuture(given.aware_at, 'aware_at');
          set.aware_at = given.aware_at;
          set.deadline_at = deadlineOf(new Date(given.aware_at)).toISOString();
        }
        if (given.scope !== undefined) Object.assign(set, scopeColumns(given.scope));
        if (given.exposure !== undefined) set.exposure = JSON.stringify(exposureOf(given.exposure, JSON.parse(r.exposure) as Exposure));
        await tx.updateTable('incidents').set(set).where('id', '=', id).execute();
        await addTimeline(tx, id, { actor, kind: 'update', detail: { fields: fields.join(','), ...(given.severity === undefined ? {} : { severity: given.severity }) } });
        return { fields };
      });
    },

    async setStatus(op, id, input, requestId) {
      return change(op, id, 'incidents.status_changed', requestId, async (tx, r, actor) => {
        const given = parse(StatusSchema, input);
        const from = r.status as IncidentStatus;
        if (!ALLOWED[from].includes(given.status)) fail(IncidentErrors.INCIDENTS_TRANSITION_INVALID, `an incident cannot go from ${from} to ${given.status}`, { from, to: given.status });
        const now = clock.now().toISOString();
        const at = given.at ?? now;
        checkNotFuture(at, 'at');
        const unnotifiedClose = given.status === 'closed' && r.notified_at === null;
        if ((unnotifiedClose || from === 'closed') && given.note === undefined)
          fail(IncidentErrors.INCIDENTS_NOTE_REQUIRED, unnotifiedClose ? 'say why the authority was not notified' : 'say why the incident is reopened');
        const set: Partial<IncidentRow> = { status: given.status, updated_at: now };
        if (given.status === 'notified') set.notified_at = at;
        if (given.status === 'closed') set.closed_at = at;
        if (from === 'closed') set.closed_at = null;
        // Two officers moving the same incident at once: only the first move from this status counts.
        const moved = await tx.updateTable('incidents').set(set).where('id', '=', id).where('status', '=', from).executeTakeFirst();
        if (Number(moved.numUpdatedRows) !== 1) fail(IncidentErrors.INCIDENTS_TRANSITION_INVALID, 'the incident changed meanwhile; read it again');
        await addTimeline(tx, id, { actor, kind: 'status', at, detail: { from, to: given.status }, ...(given.note === undefined ? {} : { note: given.note }) });
        return { fields: ['status', ...(given.note === undefined ? [] : ['note'])] };
      });
    },

    async addNote(op, id, input, requestId) {
      return change(op, id, 'incidents.timeline_added', requestId, async (tx, _r, actor) => {
        const given = parse(NoteSchema, input);
        if (given.at !== undefined) checkNotFuture(given.at, 'at');
        await addTimeline(tx, id, { actor, kind: 'note', ...(given.at === undefined ? {} : { at: given.at }), note: given.note });
        return { fields: ['note'] };
      });
    },

    async blastRadius(op, id, query = {}, requestId) {
      const actor = await authorize(op, 'incidents.affected_read', id, requestId);
      const r = await row(id);
      const report = await radius(r, parse(RadiusQuerySchema, query));
      await audit.append({ actor, action: 'incidents.affected_read', collection: 'incidents', recordId: id, fields: ['customers'], outcome: 'success', requestId: requestId ?? null });
      return report;
    },

    async drafts(op, id, requestId) {
      const actor = await authorize(op, 'incidents.drafted', id, requestId);
      const r = await row(id);
      const drafts = renderDrafts(await view(r), await scopedReport(r), deps.controller, clock.now());
      await audit.append({ actor, action: 'incidents.drafted', collection: 'incidents', recordId: id, fields: ['authority', 'customers'], outcome: 'success', requestId: requestId ?? null });
      return drafts;
    },

    async exportBundle(op, id, requestId) {
      const actor = await authorize(op, 'incidents.exported', id, requestId);
      const r = await row(id);
      const report = await scopedReport(r);
      const now = clock.now();
      await db.transaction().execute(async (tx) => {
        await addTimeline(tx, id, { actor, kind: 'export', detail: { customers: report?.totals.customers ?? 0 } });
        await audit.appendInTx(tx, {
          actor,
          action: 'incidents.exported',
          collection: 'incidents',
          recordId: id,
          fields: ['incident', 'timeline', 'drafts', ...(report === undefined ? [] : ['customers'])],
          outcome: 'success',
          requestId: requestId ?? null,
        });
      });
      const incident = await view(await row(id));
      return { incident, report, drafts: renderDrafts(incident, report, deps.controller, now), exported_at: now.toISOString(), exported_by: actor };
    },
  };
}
