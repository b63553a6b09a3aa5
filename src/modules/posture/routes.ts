import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import type { AuditLog } from '../audit/service.ts';
import { staffOf } from '../staff/context.ts';
import { errorBody } from '../staff/routes-common.ts';
import type { StaffServices } from '../staff/services.ts';
import { POSTURE_AUDIT_ACTIONS } from './module.ts';
import type { PostureService } from './service.ts';

/**
 * GET /v1/security/posture: the report of `custos doctor --json`, computed by the server over its
 * own configuration, files and database, for staff holding `incidents.manage` (inside the staff
 * scope: a live session with a verified second factor). The server probes nothing over the
 * network and runs no `npm audit`: its TLS is reported from its own settings and certificate. Each
 * read is audited (`posture.read`), before the report is made; a report is reused for five
 * minutes (service.ts, POSTURE_REUSE_MS), with the time it was made in the answer.
 */
const status = z.enum(['pass', 'warn', 'fail']);
export const postureReport = z
  .object({
    status,
    generated_at: z.string().meta({ description: 'When the checks of this report ran (ISO 8601).' }),
    fresh_until: z.string().meta({ description: 'Until when requests get this same report; the first request after it runs the checks again (ISO 8601).' }),
    checks: z.array(
      z
        .object({ id: z.string(), status, summary: z.string(), fix: z.string().nullable() })
        .meta({ id: 'PostureCheck', description: 'One check: its stable id, its answer, one line on what was found, and one on how to fix it (null on a pass).' }),
    ),
  })
  .meta({ id: 'PostureReport' });

export function registerPostureRoutes(app: FastifyInstance, deps: { posture: PostureService; staff: StaffServices; audit: Pick<AuditLog, 'append'> }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.get('/v1/security/posture', {
    schema: {
      tags: ['security'],
      summary: 'The security posture: TLS, key files and ages, secrets, staff MFA and training, the audit log, retention, deadlines (incidents.manage)',
      description:
        'The same report as `custos doctor --json`: `status` is the worst of the checks. The server makes no outbound request for it (no TLS probe, no dependency advisories: run `custos doctor` for those). Verifying the audit log reads the whole log, so a report is reused for five minutes: `generated_at` says when its checks ran, `fresh_until` when the next request runs them again (requests that arrive while a report is being made share it). `custos doctor` always checks afresh.',
      response: { 200: postureReport, 401: errorBody, 403: errorBody },
    },
    handler: async (request) => {
      const ctx = staffOf(request);
      await deps.staff.directory.authorizeMember(ctx, 'incidents.manage');
      await deps.audit.append({ actor: `staff:${ctx.memberId}`, action: POSTURE_AUDIT_ACTIONS[0], fields: [], outcome: 'success', requestId: request.id });
      const { report, generatedAt, freshUntil } = await deps.posture.report();
      return { status: report.status, generated_at: generatedAt.toISOString(), fresh_until: freshUntil.toISOString(), checks: [...report.checks] };
    },
  });
}
