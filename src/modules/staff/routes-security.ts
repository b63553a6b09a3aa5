import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { staffOf } from './context.ts';
import type { Elevation } from './elevation-service.ts';
import { REPORT_KINDS } from './report-service.ts';
import { idParam, staffErrors } from './routes-common.ts';
import type { StaffServices } from './services.ts';

/** Threat reports (any member files, security officers list) and just-in-time elevations. */
const elevation = z
  .object({
    id: z.string(),
    member_id: z.string(),
    customer_id: z.string(),
    purpose: z.string(),
    reason: z.string(),
    duration_minutes: z.number(),
    break_glass: z.boolean(),
    status: z.enum(['pending', 'active', 'expired', 'denied', 'revoked']),
    requested_at: z.string(),
    decided_by: z.string().nullable(),
    decided_at: z.string().nullable(),
    expires_at: z.string().nullable(),
  })
  ;

const elevationView = (e: Elevation) => ({
  id: e.id,
  member_id: e.memberId,
  customer_id: e.customerId,
  purpose: e.purpose,
  reason: e.reason,
  duration_minutes: e.durationMinutes,
  break_glass: e.breakGlass,
  status: e.status,
  requested_at: e.requestedAt,
  decided_by: e.decidedBy,
  decided_at: e.decidedAt,
  expires_at: e.expiresAt,
});

export function registerSecurityRoutes(app: FastifyInstance, deps: { staff: StaffServices }): void {
  const { reports, elevations } = deps.staff;
  const r = app.withTypeProvider<ZodTypeProvider>();

  r.post('/v1/staff/reports', {
    schema: {
      tags: ['staff security'],
      summary: 'Report suspected phishing, suspicious activity, a lost device or another security concern',
      body: z.object({ kind: z.enum(REPORT_KINDS), summary: z.string().min(1).max(500), details: z.string().max(4000).optional() }).strict(),
      response: { 201: z.object({ id: z.string(), created_at: z.string() }), ...staffErrors },
    },
    handler: async (request, reply) => {
      const { kind, summary, details } = request.body;
      const done = await reports.create(staffOf(request), { kind, summary, ...(details === undefined ? {} : { details }) }, request.id);
      return reply.code(201).send({ id: done.id, created_at: done.createdAt });
    },
  });

  r.get('/v1/staff/reports', {
    schema: {
      tags: ['staff security'],
      summary: 'Staff threat reports, newest first (reports.read: security officers)',
      querystring: z.object({ limit: z.coerce.number().int().min(1).max(200).default(50), before: z.string().max(40).optional() }),
      response: {
        200: z.object({
          data: z.array(
            z.object({ id: z.string(), reporter_id: z.string(), kind: z.enum(REPORT_KINDS), summary: z.string(), details: z.string().nullable(), created_at: z.string() }),
          ),
        }),
        ...staffErrors,
      },
    },
    handler: async (request) => {
      const list = await reports.list(staffOf(request), request.query, request.id);
      return { data: list.map((x) => ({ id: x.id, reporter_id: x.reporterId, kind: x.kind, summary: x.summary, details: x.details, created_at: x.createdAt })) };
    },
  });

  const tags = ['staff elevation'];
  r.post('/v1/staff/elevations', {
    schema: {
      tags,
      summary: 'Ask for one purpose beyond the role for one customer; break_glass grants at once after a fresh second factor',
      body: z
        .object({
          customer_id: z.string().max(40),
          purpose: z.string().max(64),
          reason: z.string().max(500),
          duration_minutes: z.number().int().optional(),
          break_glass: z.boolean().optional(),
        })
        .strict(),
      response: { 201: elevation, ...staffErrors },
    },
    handler: async (request, reply) => {
      const b = request.body;
      const created = await elevations.request(staffOf(request), {
        customerId: b.customer_id,
        purpose: b.purpose,
        reason: b.reason,
        ...(b.duration_minutes === undefined ? {} : { durationMinutes: b.duration_minutes }),
        ...(b.break_glass === undefined ? {} : { breakGlass: b.break_glass }),
      });
      return reply.code(201).send(elevationView(created));
    },
  });

  r.get('/v1/staff/elevations', {
    schema: {
      tags,
      summary: "The caller's elevations; approvers see everyone's",
      querystring: z.object({ status: z.enum(['pending', 'active', 'expired', 'denied', 'revoked']).optional() }),
      response: { 200: z.object({ data: z.array(elevation) }), ...staffErrors },
    },
    handler: async (request) => ({ data: (await elevations.list(staffOf(request), { status: request.query.status })).map(elevationView) }),
  });

  for (const action of ['approve', 'deny', 'revoke'] as const) {
    r.post(`/v1/staff/elevations/:id/${action}`, {
      schema: {
        tags,
        summary: action === 'revoke' ? 'End an elevation early (requester or approver)' : `${action === 'approve' ? 'Approve' : 'Deny'} another member's elevation (elevation.approve)`,
        params: idParam('elv'),
        response: { 200: elevation, ...staffErrors },
      },
      handler: async (request) => elevationView(await elevations[action](staffOf(request), request.params.id)),
    });
  }
}
