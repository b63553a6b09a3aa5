import { isIP } from 'node:net';
import { z } from 'zod';
import { sourceOf } from '../../kernel/security-events.ts';
import { ID_PREFIX, isId } from '../../kernel/ids.ts';
import type { Severity } from '../detection/contracts.ts';
import { STAFF_ID_PREFIX } from '../staff/directory.ts';

/** The shapes the service accepts; the routes and the CLI pass what they are given through these. */
export const SEVERITIES = ['low', 'medium', 'high', 'critical'] as const satisfies readonly Severity[];
/** open → contained → notified → closed; docs/when-something-goes-wrong.md. */
export const STATUSES = ['open', 'contained', 'notified', 'closed'] as const;
export type IncidentStatus = (typeof STATUSES)[number];
export const ACTOR_KINDS = ['staff', 'apikey', 'source'] as const;

const text = (max: number) => z.string().trim().min(1).max(max);
const instant = z.iso.datetime({ offset: true }).transform((s) => new Date(s).toISOString());

export const ActorSchema = z.strictObject({ kind: z.enum(ACTOR_KINDS), id: z.string().trim().min(1).max(64) });
export const ScopeSchema = z.strictObject({ actor: ActorSchema, from: instant, to: instant.nullable().optional() });
export const ExposureSchema = z.strictObject({ database: z.boolean().optional(), host: z.boolean().optional(), root_key: z.boolean().optional() });

export const OpenSchema = z.strictObject({
  title: text(200).optional(),
  severity: z.enum(SEVERITIES).optional(),
  description: text(4000).optional(),
  /** An alert id (detection's `GET /v1/security/alerts`). */
  from_alert: z.string().trim().min(1).max(64).optional(),
  /** A staff threat report id (`rpt_…`). */
  from_report: z.string().trim().min(1).max(64).optional(),
  aware_at: instant.optional(),
  scope: ScopeSchema.optional(),
  exposure: ExposureSchema.optional(),
});
export type OpenInput = z.input<typeof OpenSchema>;

export const UpdateSchema = z.strictObject({
  title: text(200).optional(),
  severity: z.enum(SEVERITIES).optional(),
  description: text(4000).nullable().optional(),
  consequences: text(4000).nullable().optional(),
  measures: text(4000).nullable().optional(),
  aware_at: instant.optional(),
  scope: ScopeSchema.nullable().optional(),
  exposure: ExposureSchema.optional(),
});
export type UpdateInput = z.input<typeof UpdateSchema>;

export const StatusSchema = z.strictObject({ status: z.enum(STATUSES), note: text(4000).optional(), at: instant.optional() });
export type StatusInput = z.input<typeof StatusSchema>;

export const NoteSchema = z.strictObject({ note: text(4000), at: instant.optional() });
export type NoteInput = z.input<typeof NoteSchema>;

export const RadiusQuerySchema = z.strictObject({
  actor_kind: z.enum(ACTOR_KINDS).optional(),
  actor_id: z.string().trim().min(1).max(64).optional(),
  from: instant.optional(),
  to: instant.optional(),
});
export type RadiusQuery = z.input<typeof RadiusQuerySchema>;

/**
 * The actor id in its canonical form, or undefined when it is not one of its kind: a staff member
 * id, an API key id, or a client address (IPv4, or IPv6 reduced to its /64 as detection keys it).
 */
export function canonicalActorId(kind: (typeof ACTOR_KINDS)[number], id: string): string | undefined {
  if (kind === 'staff') return isId(STAFF_ID_PREFIX, id) ? id : undefined;
  if (kind === 'apikey') return isId(ID_PREFIX.apiKey, id) ? id : undefined;
  const address = id.endsWith('::/64') ? id.slice(0, -'/64'.length) : id;
  return isIP(address) === 0 ? undefined : (sourceOf(address) ?? undefined);
}

/** The audit log's actor for a staff member or an API key (sources resolve through detection). */
export const auditActorOf = (kind: 'staff' | 'apikey', id: string) => `${kind}:${id}`;
