import type { KeyVersions } from '../../crypto/key-versions.ts';
import type { Database } from '../../store/schema.ts';
import { openText } from '../staff/keys.ts';
import { clockOf, type ClockView } from './art33.ts';
import { incidentAad, timelineAad } from './keys.ts';
import type { Exposure } from './protection.ts';
import type { ActorRef } from './report.ts';
import type { IncidentStatus } from './schemas.ts';
import type { Severity } from '../detection/contracts.ts';

/** An incident as the API, the CLI and the export show it. */
export type Detail = Readonly<Record<string, string | number | boolean | null>>;

export interface TimelineView {
  readonly id: string;
  readonly at: string;
  readonly recorded_at: string;
  readonly actor: string;
  /** opened, status, note, update, reminder, export. */
  readonly kind: string;
  readonly detail: Detail;
  readonly note: string | null;
}

export interface ScopeView {
  readonly actor: ActorRef;
  readonly from: string;
  /** null: up to now. */
  readonly to: string | null;
}

export interface IncidentView {
  readonly id: string;
  readonly title: string;
  readonly severity: Severity;
  readonly status: IncidentStatus;
  readonly origin: { readonly kind: 'alert' | 'report' | 'manual'; readonly ref: string | null };
  readonly clock: ClockView;
  readonly scope: ScopeView | null;
  readonly exposure: Exposure;
  readonly description: string | null;
  readonly consequences: string | null;
  readonly measures: string | null;
  readonly created_by: string;
  readonly created_at: string;
  readonly updated_at: string;
  readonly closed_at: string | null;
  readonly timeline: readonly TimelineView[];
}

/** The sealed free text of an incident. */
export interface IncidentText {
  title: string;
  description: string | null;
  consequences: string | null;
  measures: string | null;
}

export type IncidentRow = Database['incidents'];
export type TimelineRow = Database['incident_timeline'];

export function openIncidentText(key: KeyVersions, row: Pick<IncidentRow, 'id' | 'sealed'>): IncidentText {
  return JSON.parse(openText(key, incidentAad(row.id), row.sealed)) as IncidentText;
}

export function scopeOf(row: IncidentRow): ScopeView | null {
  if (row.scope_actor_kind === null || row.scope_actor_id === null || row.scope_from === null) return null;
  return { actor: { kind: row.scope_actor_kind as ActorRef['kind'], id: row.scope_actor_id }, from: row.scope_from, to: row.scope_to };
}

export function timelineView(key: KeyVersions, row: TimelineRow): TimelineView {
  return {
    id: row.id,
    at: row.at,
    recorded_at: row.recorded_at,
    actor: row.actor,
    kind: row.kind,
    detail: JSON.parse(row.detail) as Detail,
    note: row.sealed === null ? null : openText(key, timelineAad(row.incident_id, row.id), row.sealed),
  };
}

export function incidentView(key: KeyVersions, row: IncidentRow, timeline: readonly TimelineRow[], now: Date): IncidentView {
  const text = openIncidentText(key, row);
  return {
    id: row.id,
    title: text.title,
    severity: row.severity as Severity,
    status: row.status as IncidentStatus,
    origin: { kind: row.origin as IncidentView['origin']['kind'], ref: row.origin_ref },
    clock: clockOf(row, now),
    scope: scopeOf(row),
    exposure: JSON.parse(row.exposure) as Exposure,
    description: text.description,
    consequences: text.consequences,
    measures: text.measures,
    created_by: row.created_by,
    created_at: row.created_at,
    updated_at: row.updated_at,
    closed_at: row.closed_at,
    timeline: timeline.map((t) => timelineView(key, t)),
  };
}
