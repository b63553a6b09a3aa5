import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { staffOf } from '../staff/context.ts';
import { errorBody, idParam, operator } from '../staff/routes-common.ts';
import { TOUCHES } from './blast-radius.ts';
import type { IncidentService } from './service.ts';
import { ACTOR_KINDS, NoteSchema, OpenSchema, RadiusQuerySchema, SEVERITIES, StatusSchema, STATUSES, UpdateSchema } from './schemas.ts';

/**
 * /v1/security/incidents: the incident register for staff holding `incidents.manage`, in the
 * staff scope of src/app.ts (a staff session with a second factor; no API key reaches it). The
 * blast radius lists customers (personal data): each reading is audited (`incidents.affected_read`).
 */
const errors = { 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody, 409: errorBody };
const tags = ['incidents'];

const exposure = z.object({ database: z.boolean(), host: z.boolean(), root_key: z.boolean() });
const actor = z.object({ kind: z.enum(ACTOR_KINDS), id: z.string() });
const timeline = z.object({
  id: z.string(),
  at: z.string(),
  recorded_at: z.string(),
  actor: z.string(),
  kind: z.string(),
  detail: z.record(z.string(), z.union([z.string(), z.number(), z.boolean(), z.null()])),
  note: z.string().nullable(),
});
const incident = z
  .object({
    id: z.string(),
    title: z.string(),
    severity: z.enum(SEVERITIES),
    status: z.enum(STATUSES),
    origin: z.object({ kind: z.enum(['alert', 'report', 'manual']), ref: z.string().nullable() }),
    clock: z.object({
      aware_at: z.string(),
      deadline_at: z.string(),
      state: z.enum(['running', 'overdue', 'notified_in_time', 'notified_late', 'closed_without_notification']),
      remaining_seconds: z.number().nullable(),
      notified_at: z.string().nullable(),
    }),
    scope: z.object({ actor, from: z.string(), to: z.string().nullable() }).nullable(),
    exposure,
    description: z.string().nullable(),
    consequences: z.string().nullable(),
    measures: z.string().nullable(),
    created_by: z.string(),
    created_at: z.string(),
    updated_at: z.string(),
    closed_at: z.string().nullable(),
    timeline: z.array(timeline).readonly(),
  })
  .meta({ id: 'Incident' });

const decision = z.enum(['exposed', 'masked', 'protected']);
const blastRadius = z
  .object({
    actor,
    actors: z.array(z.string()).readonly(),
    from: z.string(),
    to: z.string(),
    computed_at: z.string(),
    exposure,
    keys: z.object({
      root_provider: z.enum(['keyring', 'env', 'file', 'pkcs11']),
      root_kid: z.string(),
      root_beside_database: z.boolean(),
      kek_version: z.number(),
      keks_under_older_root: z.number(),
    }),
    totals: z.object({
      entries: z.number(),
      touching_entries: z.number(),
      refused_entries: z.number(),
      customers: z.number(),
      records: z.number(),
      card_records_without_customer: z.number(),
      customers_exposed: z.number(),
      customers_art34_3_a: z.number(),
    }),
    all_stored_customers: z.boolean(),
    categories: z.array(z.object({ category: z.string(), fields: z.array(z.string()).readonly(), customers: z.number(), entries: z.number(), decision })).readonly(),
    fields: z.array(
      z.object({
        collection: z.string(),
        field: z.string(),
        category: z.string(),
        at_rest: z.enum(['randomised', 'searchable', 'plain', 'undeclared']),
        entries: z.number(),
        customers: z.number(),
        touches: z.object(Object.fromEntries(TOUCHES.map((t) => [t, z.number()])) as Record<(typeof TOUCHES)[number], z.ZodNumber>),
        decision,
        reason: z.string(),
        art34_3_a: z.boolean(),
        modified: z.boolean(),
      }),
    ).readonly(),
    actions: z.array(z.object({ action: z.string(), outcome: z.string(), entries: z.number() })).readonly(),
    cards: z.object({ involved: z.boolean(), records: z.number(), reveals: z.number(), relays: z.number(), brands: z.record(z.string(), z.number()) }),
    customers: z.array(
      z.object({
        customer_id: z.string(),
        entries: z.number(),
        records: z.number(),
        first_at: z.string(),
        last_at: z.string(),
        fields: z.array(z.string()).readonly(),
        exposed_fields: z.array(z.string()).readonly(),
        art34_3_a: z.boolean(),
      }),
    ).readonly(),
    customers_total: z.number(),
    next_after: z.string().nullable(),
  })
  .meta({ id: 'BlastRadius' });
const draft = z.object({ markdown: z.string(), html: z.string() });

export function registerIncidentRoutes(app: FastifyInstance, deps: { incidents: IncidentService }): void {
  const { incidents } = deps;
  const r = app.withTypeProvider<ZodTypeProvider>();
  const id = idParam('inc');

  r.get('/v1/security/incidents', {
    schema: {
      tags,
      summary: 'The incident register, newest first (incidents.manage)',
      querystring: z.object({ status: z.enum(STATUSES).optional(), limit: z.coerce.number().int().min(1).max(200).default(50), before: z.string().max(40).optional() }),
      response: { 200: z.object({ data: z.array(incident) }), ...errors },
    },
    handler: async (request) => ({ data: await incidents.list(operator(staffOf(request)), request.query, request.id) }),
  });

  r.post('/v1/security/incidents', {
    schema: {
      tags,
      summary: 'Open an incident: from an alert (from_alert), from a staff threat report (from_report), or by hand (title and severity); starts the 72-hour clock at aware_at',
      body: OpenSchema,
      response: { 201: incident, ...errors },
    },
    handler: async (request, reply) => reply.code(201).send(await incidents.open(operator(staffOf(request)), request.body, request.id)),
  });

  r.get('/v1/security/incidents/:id', {
    schema: { tags, summary: 'One incident with its clock and timeline', params: id, response: { 200: incident, ...errors } },
    handler: async (request) => incidents.get(operator(staffOf(request)), request.params.id, request.id),
  });

  r.patch('/v1/security/incidents/:id', {
    schema: { tags, summary: 'Change title, severity, description, consequences, measures, aware_at, scope or exposure', params: id, body: UpdateSchema, response: { 200: incident, ...errors } },
    handler: async (request) => incidents.update(operator(staffOf(request)), request.params.id, request.body, request.id),
  });

  r.post('/v1/security/incidents/:id/status', {
    schema: {
      tags,
      summary: 'Move the incident: open → contained → notified → closed (closing without notification, or reopening, needs a note)',
      params: id,
      body: StatusSchema,
      response: { 200: incident, ...errors },
    },
    handler: async (request) => incidents.setStatus(operator(staffOf(request)), request.params.id, request.body, request.id),
  });

  r.post('/v1/security/incidents/:id/timeline', {
    schema: { tags, summary: 'Add a note to the timeline (`at`: when it happened, default now)', params: id, body: NoteSchema, response: { 201: incident, ...errors } },
    handler: async (request, reply) => reply.code(201).send(await incidents.addNote(operator(staffOf(request)), request.params.id, request.body, request.id)),
  });

  r.get('/v1/security/incidents/:id/blast-radius', {
    schema: {
      tags,
      summary: "Affected customers and data categories of the incident's scope (or of the actor and window given), with the Art. 34(3)(a) assessment per field; audited",
      params: id,
      querystring: RadiusQuerySchema.extend({ limit: z.coerce.number().int().min(1).max(10_000).default(1000), after: z.string().max(40).optional() }),
      response: { 200: blastRadius, ...errors },
    },
    handler: async (request) => {
      const { limit, after, ...query } = request.query;
      const report = await incidents.blastRadius(operator(staffOf(request)), request.params.id, query, request.id);
      const start = after === undefined ? 0 : report.customers.findIndex((c) => c.customer_id > after);
      const page = start < 0 ? [] : report.customers.slice(start, start + limit);
      const more = start >= 0 && start + limit < report.customers.length;
      return { ...report, customers: page, customers_total: report.customers.length, next_after: more ? (page.at(-1)?.customer_id ?? null) : null };
    },
  });

  r.get('/v1/security/incidents/:id/drafts', {
    schema: {
      tags,
      summary: 'Drafts of the notification to the supervisory authority (GDPR Art. 33(3)) and of the notice to customers (Art. 34), in Markdown and HTML',
      params: id,
      response: { 200: z.object({ authority: draft, customers: draft }), ...errors },
    },
    handler: async (request) => incidents.drafts(operator(staffOf(request)), request.params.id, request.id),
  });
}
