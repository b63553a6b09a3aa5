import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { Directory } from '../staff/directory.ts';
import type { RestrictionService } from './restrictions.ts';
import { restrictionSchema, rightsCaller } from './routes.ts';

/**
 * A customer's restriction of processing (GDPR Art. 18) as the shop works it, in the API-key
 * scope: an API key scoped to `rights` or staff holding `rights.manage`. A restriction is put in
 * force by completing a restriction request (routes.ts); lifting it tells the customer first.
 */
const errorBody = z.object({ error: z.object({ code: z.string(), message: z.string(), request_id: z.string() }).loose() });
const errors = { 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody, 409: errorBody };
const customerIdParam = z.object({ id: z.string().regex(/^cus_[0-9A-HJKMNP-TV-Z]{26}$/, 'must be a cus_ id') });

export function registerRestrictionRoutes(app: FastifyInstance, deps: { restrictions: RestrictionService; directory: Pick<Directory, 'authorizeMember'> }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const tags = ['rights'];

  r.get('/v1/customers/:id/restriction', {
    schema: { tags, summary: "Whether the customer's data is restricted (GDPR Art. 18), and until when", params: customerIdParam, response: { 200: restrictionSchema, ...errors } },
    handler: async (request) => {
      await rightsCaller(request, deps.directory);
      return deps.restrictions.view(request.params.id);
    },
  });

  r.post('/v1/customers/:id/restriction/lift', {
    schema: {
      tags,
      summary: "Lift the customer's restriction, telling them first (GDPR Art. 18(3))",
      description:
        'Mails the customer that the restriction ends in `notice_days` (default 14; the mail holds nothing personal but the address), then schedules its end; until then the restriction holds. A customer who cannot be told (no email address, or the mail failed) keeps the restriction: `409 RIGHTS_RESTRICTION_NOTICE_FAILED`.',
      params: customerIdParam,
      body: z.object({ reason: z.string().trim().min(1).max(1000), notice_days: z.number().int().min(0).max(90).default(14) }).strict(),
      response: { 200: restrictionSchema, ...errors },
    },
    handler: async (request) => {
      const caller = await rightsCaller(request, deps.directory);
      return deps.restrictions.lift(caller, request.params.id, { reason: request.body.reason, noticeDays: request.body.notice_days });
    },
  });
}
