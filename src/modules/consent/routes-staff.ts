import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { staffOf } from '../staff/context.ts';
import { staffActor } from '../staff/guard.ts';
import type { StaffServices } from '../staff/services.ts';
import { consentRecorded, errorBody } from './routes.ts';
import type { ConsentService } from './service.ts';

/** The privacy officer's decision on an objection (staff holding rights.manage; inside the staff scope). */
export function registerObjectionDecisionRoutes(app: FastifyInstance, deps: { consent: ConsentService; staff: StaffServices }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.post('/v1/staff/objections/:id/:purpose', {
    schema: {
      tags: ['consents'],
      summary: "Decide a customer's objection (GDPR Art. 21(1)): upheld, the processing stays stopped; rejected, it resumes",
      params: z.object({ id: z.string().regex(/^cus_[0-9A-HJKMNP-TV-Z]{26}$/), purpose: z.string().min(1).max(64) }),
      body: z.object({ upheld: z.boolean() }).strict(),
      response: { 201: consentRecorded, 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody, 409: errorBody },
    },
    handler: async (request, reply) => {
      const member = await deps.staff.directory.authorizeMember(staffOf(request), 'rights.manage');
      const ctx = { actor: staffActor(member), requestId: request.id };
      return reply.code(201).send(await deps.consent.decideObjection(ctx, request.params.id, request.params.purpose, request.body.upheld));
    },
  });
}
