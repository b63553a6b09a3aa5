/**
 * The incident register at a glance (CONVENTIONS.md, module layout).
 *
 * Owns: tables incidents, incident_timeline and incident_reminders (migration 0017-incidents, which
 * also adds the audit log's index by actor and time for the blast radius); the routes under
 * /v1/security/incidents (routes.ts) in the staff scope of src/app.ts, for holders of
 * `incidents.manage`; `custos incident open|list|export` (src/cli/commands/incident.ts); error codes
 * INCIDENTS_* (errors.ts); the Art. 33 clock and its reminders (art33.ts, reminders.ts: a leased
 * background job mailing the holders of incidents.manage at 24, 48, 66 and 72 hours); the blast
 * radius (blast-radius.ts counts the audit rows of src/modules/audit/activity.ts, report.ts shapes
 * them); the Art. 34(3)(a) decision per field (protection.ts: the rule is written there); the
 * drafts for the supervisory authority and the customers, Markdown and HTML (drafts.ts, render.ts).
 *
 * Personal data it holds: the free text of incidents and timeline notes (title, description,
 * likely consequences, measures, notes), sealed with AES-256-GCM under the incident key (keys.ts),
 * bound to its row. The affected-customers list is computed from the audit log on each request and
 * never stored; only holders of incidents.manage (and the CLI operator) receive it, each time
 * audited as `incidents.affected_read` (or within `incidents.exported`). Reminder mails carry ids,
 * severity and times only; logs carry none of it.
 *
 * Depends on: audit (actorActivity over the log; every action appended), staff (Directory for
 * `incidents.manage`, the Notifier's mail, threat reports by id), detection's contracts (AlertLookup
 * for opening from an alert; a source → actors resolver from its table of recent sources),
 * inventory (fields, categories, protection, purposes' access), crypto (the configured root
 * provider and the key store's KEK state, for the Art. 34(3)(a) decision), cards (brands of the
 * cards touched, for the PCI DSS 12.10.1 step), store (Kysely, job leases).
 */
export const INCIDENT_AUDIT_ACTIONS = [
  'incidents.opened',
  'incidents.read',
  'incidents.updated',
  'incidents.status_changed',
  'incidents.timeline_added',
  // A blast radius (a list of customers) was given to the actor.
  'incidents.affected_read',
  'incidents.drafted',
  'incidents.exported',
  'incidents.reminder_sent',
] as const;
export type IncidentAuditAction = (typeof INCIDENT_AUDIT_ACTIONS)[number];
