import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { staffOf } from './context.ts';
import type { RoleChange } from './role-service.ts';
import { PERMISSIONS, ROLE_NAME, type RoleDef } from './roles.ts';
import { idParam, operator, staffErrors } from './routes-common.ts';
import type { StaffServices } from './services.ts';

/**
 * Roles and role changes. Defining a role that grants more than before answers 202 with the
 * change, pending until a second admin approves it (POST …/role-changes/{id}/approve); whatever
 * the definition takes away applies at once.
 */
const role = z.object({ name: z.string(), description: z.string(), purposes: z.array(z.string()), permissions: z.array(z.string()), built_in: z.boolean() });
export const roleChange = z.object({
  id: z.string(),
  kind: z.enum(['define', 'assign']),
  role: z.string(),
  member_id: z.string().nullable(),
  definition: z.object({ description: z.string(), purposes: z.array(z.string()), permissions: z.array(z.string()) }).nullable(),
  status: z.enum(['pending', 'applied', 'denied', 'expired']),
  requested_by: z.string(),
  requested_at: z.string(),
  decided_by: z.string().nullable(),
  decided_at: z.string().nullable(),
});

const roleView = (d: RoleDef) => ({ name: d.name, description: d.description, purposes: [...d.purposes], permissions: [...d.permissions], built_in: d.builtIn });
export const roleChangeView = (c: RoleChange) => ({
  id: c.id,
  kind: c.kind,
  role: c.role,
  member_id: c.memberId,
  definition: c.definition === null ? null : { description: c.definition.description, purposes: [...c.definition.purposes], permissions: [...c.definition.permissions] },
  status: c.status,
  requested_by: c.requestedBy,
  requested_at: c.requestedAt,
  decided_by: c.decidedBy,
  decided_at: c.decidedAt,
});
const roleName = z.object({ name: z.string().regex(ROLE_NAME) });

export function registerRoleRoutes(app: FastifyInstance, deps: { staff: StaffServices }): void {
  const { roles, directory } = deps.staff;
  const r = app.withTypeProvider<ZodTypeProvider>();
  const tags = ['staff'];

  r.get('/v1/staff/roles', {
    schema: { tags, summary: 'Roles, their purposes and permissions', response: { 200: z.object({ data: z.array(role) }), ...staffErrors } },
    handler: async (request) => {
      await directory.authorizeSelf(staffOf(request));
      return { data: (await roles.list()).map(roleView) };
    },
  });

  r.put('/v1/staff/roles/:name', {
    schema: {
      tags,
      summary: 'Define or replace a custom role (roles.manage); what it grants beyond the role as it was waits for a second admin (202)',
      params: roleName,
      body: z.object({ description: z.string().max(200).optional(), purposes: z.array(z.string().max(64)).max(32), permissions: z.array(z.enum(PERMISSIONS)) }).strict(),
      response: { 200: role, 202: z.object({ role: role.nullable(), role_change: roleChange }), ...staffErrors },
    },
    handler: async (request, reply) => {
      const done = await roles.define(operator(staffOf(request)), { name: request.params.name, ...request.body });
      if (done.pending !== undefined)
        return reply.code(202).send({ role: done.result === undefined ? null : roleView(done.result), role_change: roleChangeView(done.pending) });
      return roleView(done.result!);
    },
  });

  r.delete('/v1/staff/roles/:name', {
    schema: { tags, summary: 'Remove a custom role nobody holds (roles.manage)', params: roleName, response: { 204: z.null(), ...staffErrors } },
    handler: async (request, reply) => {
      await roles.remove(operator(staffOf(request)), request.params.name);
      return reply.code(204).send(null);
    },
  });

  r.get('/v1/staff/role-changes', {
    schema: {
      tags,
      summary: 'Role changes, newest first (roles.manage or staff.manage)',
      querystring: z.object({ status: z.enum(['pending', 'applied', 'denied', 'expired']).optional() }),
      response: { 200: z.object({ data: z.array(roleChange) }), ...staffErrors },
    },
    handler: async (request) => ({ data: (await roles.changes(operator(staffOf(request)), { status: request.query.status })).map(roleChangeView) }),
  });

  for (const action of ['approve', 'deny'] as const) {
    r.post(`/v1/staff/role-changes/:id/${action}`, {
      schema: {
        tags,
        summary:
          action === 'approve'
            ? 'Apply a pending role change as a second admin (roles.manage for a definition, staff.manage for an assignment)'
            : 'Refuse a pending role change (an admin who may approve it, or its requester)',
        params: idParam('rch'),
        response: { 200: roleChange, ...staffErrors },
      },
      handler: async (request) => roleChangeView(await roles[action](operator(staffOf(request)), request.params.id)),
    });
  }
}
