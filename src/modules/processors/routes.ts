import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorBody } from '../consent/routes.ts';
import { staffOf } from '../staff/context.ts';
import type { StaffServices } from '../staff/services.ts';
import { processorInput, type ProcessorService } from './service.ts';

/** The processor registry for staff holding `privacy.manage` (inside the staff scope). */
const errors = { 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody };
export const processorView = z
  .object({
    id: z.string(),
    name: z.string(),
    role: z.enum(['processor', 'controller']),
    purposes: z.array(z.string()),
    categories: z.array(z.string()),
    country: z.string(),
    safeguard: z.enum(['adequacy', 'scc', 'bcr']).nullable(),
    dpa_signed: z.string().nullable(),
    retention: z.string().nullable(),
    added_at: z.string(),
    removed_at: z.string().nullable(),
    webhook_url: z.string().nullable().meta({ description: 'Where it is told of erasures (Standard Webhooks, signed); null: staff confirm by hand.' }),
  })
  .meta({ id: 'Processor' });
/** The answer to adding one: with a webhook URL, its signing secret, shown this once. */
const addedView = processorView.extend({ webhook_secret: z.string().optional().meta({ description: '`whsec_…`: verify the `webhook-signature` header with it. Shown only here.' }) }).meta({ id: 'ProcessorAdded' });

export function registerProcessorRoutes(app: FastifyInstance, deps: { processors: ProcessorService; staff: StaffServices }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const tags = ['processors'];
  const allowed = async (request: Parameters<typeof staffOf>[0]) => {
    const ctx = staffOf(request);
    await deps.staff.directory.authorizeMember(ctx, 'privacy.manage');
    return `staff:${ctx.memberId}`;
  };

  r.get('/v1/processors', {
    schema: { tags, summary: 'Recipients of customer data (with ?all=true, past ones too)', querystring: z.object({ all: z.enum(['true', 'false']).optional() }), response: { 200: z.object({ data: z.array(processorView) }), ...errors } },
    handler: async (request) => {
      await allowed(request);
      return { data: await deps.processors.list({ all: request.query.all === 'true' }) };
    },
  });

  r.post('/v1/processors', {
    schema: { tags, summary: 'Add a recipient (processor or independent controller)', body: processorInput, response: { 201: addedView, ...errors } },
    handler: async (request, reply) => reply.code(201).send(await deps.processors.add(await allowed(request), request.body, request.id)),
  });

  r.delete('/v1/processors/:id', {
    schema: { tags, summary: 'End a recipient (kept as a past recipient)', params: z.object({ id: z.string().regex(/^prc_[0-9A-HJKMNP-TV-Z]{26}$/) }), response: { 200: processorView, ...errors } },
    handler: async (request) => deps.processors.remove(await allowed(request), request.params.id, request.id),
  });
}
