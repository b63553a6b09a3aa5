import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { actorOf } from '../../http/auth.ts';
import { errorBody } from '../staff/routes-common.ts';
import { fail } from '../../kernel/errors.ts';
import type { Directory } from '../staff/directory.ts';
import { staffMemberId } from '../staff/guard.ts';
import { ALERT_ID_PREFIX } from './alerts.ts';
import type { Alert } from './contracts.ts';
import { DetectionErrors } from './errors.ts';
import { SECURITY_PURPOSE } from './module.ts';
import type { Detection } from './service.ts';

/**
 * Security alerts over HTTP (API-key scope of src/app.ts): for staff holding `incidents.manage`
 * (active, second factor enrolled) and for API keys scoped to the `security` purpose. The answer
 * is contracts.ts's `Alert`. Acknowledging and closing are audited with the caller as actor.
 */
const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);
export const alertSchema = z
  .object({
    id: z.string(),
    rule: z.string(),
    severity: z.enum(['low', 'medium', 'high', 'critical']),
    status: z.enum(['open', 'acknowledged', 'closed']),
    title: z.string(),
    actor: z.object({ kind: z.enum(['apikey', 'staff', 'customer', 'account', 'source', 'system']), id: z.string(), name: z.string().nullable().optional() }).nullable(),
    source: z.string().nullable(),
    count: z.number(),
    detail: z.record(z.string(), scalar),
    actions: z.array(z.string()),
    first_seen: z.string(),
    last_seen: z.string(),
    acknowledged_by: z.string().nullable(),
    acknowledged_at: z.string().nullable(),
    closed_by: z.string().nullable(),
    closed_at: z.string().nullable(),
    note: z.string().nullable(),
  })
  .meta({ id: 'Alert' });

const idParam = z.object({ id: z.string().regex(new RegExp(`^${ALERT_ID_PREFIX}_[0-9A-HJKMNP-TV-Z]{26}$`)) });
const note = z.string().trim().min(1).max(2000);

/** The caller's audit actor ref, once it may work with alerts. */
async function securityCaller(request: FastifyRequest, directory: Pick<Directory, 'authorizeMember'>): Promise<string> {
  const actor = actorOf(request);
  if (actor.kind === 'staff') {
    const memberId = staffMemberId(actor.ref);
    if (memberId === undefined) fail(DetectionErrors.DETECTION_NOT_ALLOWED, 'this caller may not see security alerts');
    await directory.authorizeMember({ memberId }, 'incidents.manage');
    return actor.ref;
  }
  if (actor.kind !== 'apikey' || !actor.purposes.includes(SECURITY_PURPOSE))
    fail(DetectionErrors.DETECTION_NOT_ALLOWED, `security alerts need an API key scoped to the ${SECURITY_PURPOSE} purpose, or staff holding incidents.manage`);
  return actor.ref;
}

export function registerSecurityAlertRoutes(app: FastifyInstance, deps: { detection: Detection; directory: Pick<Directory, 'authorizeMember'> }): void {
  const { detection, directory } = deps;
  const r = app.withTypeProvider<ZodTypeProvider>();
  const tags = ['security'];
  const errors = { 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody };
  const view = (alert: Alert | undefined) => {
    if (alert === undefined) fail(DetectionErrors.DETECTION_ALERT_NOT_FOUND, 'no alert with that id');
    return { ...alert, actor: alert.actor === null ? null : { ...alert.actor }, detail: { ...alert.detail }, actions: [...alert.actions] };
  };

  r.get('/v1/security/alerts', {
    schema: {
      tags,
      summary: 'Security alerts raised by the detection rules, newest first',
      querystring: z.object({
        status: z.enum(['open', 'acknowledged', 'closed']).optional(),
        rule: z.string().regex(/^[a-z_]{1,64}$/).optional(),
        limit: z.coerce.number().int().min(1).max(200).default(50),
        before: idParam.shape.id.optional(),
      }),
      response: { 200: z.object({ data: z.array(alertSchema), next_before: z.string().nullable() }), ...errors },
    },
    handler: async (request) => {
      await securityCaller(request, directory);
      const page = await detection.list(request.query);
      return { data: page.data.map(view), next_before: page.next_before };
    },
  });

  r.get('/v1/security/alerts/:id', {
    schema: { tags, summary: 'One security alert', params: idParam, response: { 200: alertSchema, ...errors } },
    handler: async (request) => {
      await securityCaller(request, directory);
      return view(await detection.get(request.params.id));
    },
  });

  r.post('/v1/security/alerts/:id/ack', {
    schema: {
      tags,
      summary: 'Acknowledge an alert (someone is on it); optionally with a note',
      params: idParam,
      body: z.object({ note: note.optional() }).strict().nullish(),
      response: { 200: alertSchema, ...errors, 409: errorBody },
    },
    handler: async (request) => {
      const by = await securityCaller(request, directory);
      return view(await detection.acknowledge(request.params.id, by, request.body?.note, request.id));
    },
  });

  r.post('/v1/security/alerts/:id/close', {
    schema: {
      tags,
      summary: 'Close an alert with a note saying what was found and done',
      params: idParam,
      body: z.object({ note }).strict(),
      response: { 200: alertSchema, ...errors, 409: errorBody },
    },
    handler: async (request) => {
      const by = await securityCaller(request, directory);
      return view(await detection.close(request.params.id, by, request.body.note, request.id));
    },
  });
}
