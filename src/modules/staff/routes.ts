import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { Secret } from '../../kernel/secret.ts';
import { staffOf } from './context.ts';
import type { MemberInfo } from './member-service.ts';
import { errorBody, idParam, operator, staffErrors } from './routes-common.ts';
import { ROLE_NAME } from './roles.ts';
import { registerRoleRoutes, roleChange, roleChangeView } from './routes-roles.ts';
import { registerSecurityRoutes } from './routes-security.ts';
import { registerTrainingRoutes } from './routes-training.ts';
import type { StaffServices } from './services.ts';

/**
 * The staff API under /v1/staff: members here, roles and role changes in routes-roles.ts, training
 * in routes-training.ts, threat reports and elevations in routes-security.ts. Every route needs a staff session
 * (`request.staff`, set by the session layer); authorisation is decided by the services, which
 * reload the member on every call. Register in the staff (admin) scope; the invitation route is
 * public and registers separately (`registerStaffInvitationRoutes`).
 */
const member = z
  .object({
    id: z.string(),
    email: z.string(),
    role: z.string(),
    status: z.enum(['invited', 'active', 'suspended']),
    mfa_enrolled: z.boolean(),
    purposes: z.array(z.string()),
    permissions: z.array(z.string()),
    created_at: z.string(),
    updated_at: z.string(),
    suspended_at: z.string().nullable(),
  })
  ;
const invitation = z.object({
  id: z.string(),
  role: z.string(),
  status: z.string(),
  invitation_expires_at: z.string(),
  invitation_mailed: z.boolean(),
  /** The role asked for, waiting for a second admin (the member is `unassigned` meanwhile). */
  pending_role_change: roleChange.nullable(),
});

const memberView = (m: MemberInfo) => ({
  id: m.id,
  email: m.email,
  role: m.role,
  status: m.status,
  mfa_enrolled: m.mfaEnrolled,
  purposes: [...m.purposes],
  permissions: [...m.permissions],
  created_at: m.createdAt,
  updated_at: m.updatedAt,
  suspended_at: m.suspendedAt,
});

export function registerStaffRoutes(app: FastifyInstance, deps: { staff: StaffServices }): void {
  const { members } = deps.staff;
  const r = app.withTypeProvider<ZodTypeProvider>();
  const tags = ['staff'];

  r.get('/v1/staff/me', {
    schema: { tags, summary: 'The signed-in staff member', response: { 200: member, ...staffErrors } },
    handler: async (request) => {
      const ctx = staffOf(request);
      return memberView(await members.get(operator(ctx), ctx.memberId));
    },
  });

  r.get('/v1/staff/members', {
    schema: { tags, summary: 'Every staff member (staff.manage)', response: { 200: z.object({ data: z.array(member) }), ...staffErrors } },
    handler: async (request) => ({ data: (await members.list(operator(staffOf(request)))).map(memberView) }),
  });

  r.post('/v1/staff/members', {
    schema: {
      tags,
      summary: 'Invite a staff member by email (staff.manage); the link is mailed, never returned',
      body: z.object({ email: z.string().max(320), role: z.string().regex(ROLE_NAME) }).strict(),
      response: { 201: invitation, ...staffErrors },
    },
    handler: async (request, reply) => {
      const { member: m, invitation: inv, pending } = await members.create(operator(staffOf(request)), request.body);
      return reply.code(201).send({
        id: m.id,
        role: m.role,
        status: m.status,
        invitation_expires_at: inv.expiresAt,
        invitation_mailed: inv.mailed,
        pending_role_change: pending === undefined ? null : roleChangeView(pending),
      });
    },
  });

  r.get('/v1/staff/members/:id', {
    schema: { tags, summary: 'One staff member (staff.manage, or oneself)', params: idParam('stf'), response: { 200: member, ...staffErrors } },
    handler: async (request) => memberView(await members.get(operator(staffOf(request)), request.params.id)),
  });

  r.patch('/v1/staff/members/:id', {
    schema: {
      tags,
      summary: "Change a member's role (staff.manage); a role that grants more waits for a second admin (202)",
      params: idParam('stf'),
      body: z.object({ role: z.string().regex(ROLE_NAME) }).strict(),
      response: { 200: member, 202: z.object({ role_change: roleChange }), ...staffErrors },
    },
    handler: async (request, reply) => {
      const op = operator(staffOf(request));
      const { pending } = await members.changeRole(op, request.params.id, request.body.role);
      if (pending !== undefined) return reply.code(202).send({ role_change: roleChangeView(pending) });
      return memberView(await members.get(op, request.params.id));
    },
  });

  for (const action of ['suspend', 'reactivate', 'invitation'] as const) {
    r.post(`/v1/staff/members/:id/${action}`, {
      schema: {
        tags,
        summary: action === 'invitation' ? 'Mail a new invitation link (staff.manage)' : `${action[0]!.toUpperCase()}${action.slice(1)} a member (staff.manage)`,
        params: idParam('stf'),
        response: { 200: z.object({ id: z.string(), status: z.string(), invitation_mailed: z.boolean().optional() }), ...staffErrors },
      },
      handler: async (request) => {
        const op = operator(staffOf(request));
        const id = request.params.id;
        if (action === 'invitation') return { id, status: 'invited', invitation_mailed: (await members.invite(op, id)).mailed };
        const m = action === 'suspend' ? await members.suspend(op, id) : await members.reactivate(op, id);
        return { id: m.id, status: m.status };
      },
    });
  }

  registerRoleRoutes(app, deps);
  registerTrainingRoutes(app, deps);
  registerSecurityRoutes(app, deps);
}

/**
 * The public end of an invitation: the link's token and a new password (staff policy). Register
 * it in the public scope (no API key, no session). Rate-limit it like any sign-in route.
 */
export function registerStaffInvitationRoutes(app: FastifyInstance, deps: { staff: Pick<StaffServices, 'members'> }): void {
  app.withTypeProvider<ZodTypeProvider>().post('/v1/staff/invitations/accept', {
    schema: {
      tags: ['staff'],
      summary: 'Accept a staff invitation: set a password through the link',
      body: z.object({ token: z.string().max(200), password: z.string().max(1024) }).strict(),
      response: { 200: z.object({ member_id: z.string(), next: z.literal('enrol_second_factor') }), 400: errorBody, 403: errorBody },
    },
    handler: async (request) => {
      const done = await deps.staff.members.acceptInvitation({ token: new Secret(request.body.token), password: new Secret(request.body.password) });
      return { member_id: done.memberId, next: 'enrol_second_factor' as const };
    },
  });
}
