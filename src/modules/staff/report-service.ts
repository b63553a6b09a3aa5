import type { KeyVersions } from '../../crypto/key-versions.ts';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { Clock } from '../../kernel/clock.ts';
import { fail } from '../../kernel/errors.ts';
import { newId } from '../../kernel/ids.ts';
import type { Database } from '../../store/schema.ts';
import type { AuditLog } from '../audit/service.ts';
import type { Directory } from './directory.ts';
import { StaffErrors } from './errors.ts';
import { openText, sealText } from './keys.ts';
import type { Notifier } from './notify.ts';

/**
 * Threat reporting: any staff member reports a suspected phishing mail, suspicious activity, a
 * lost device or another security concern (PCI DSS 4.0.1 12.6.3.1: personnel are trained to
 * recognise and report phishing; 12.10.1 incident response starts from such reports). A report
 * needs no second factor — the member who just lost their phone must still be able to say so.
 * The free text is sealed at rest (AES-256-GCM bound to id, reporter and kind), every filing and
 * every reading is audited, security officers are mailed, and only holders of `reports.read` list
 * them.
 */
export const REPORT_KINDS = ['phishing', 'suspicious_activity', 'lost_device', 'other'] as const;
export type ReportKind = (typeof REPORT_KINDS)[number];

export const ReportInputSchema = z.object({
  kind: z.enum(REPORT_KINDS),
  summary: z.string().trim().min(1).max(500),
  details: z.string().max(4000).optional(),
});
export type ReportInput = z.input<typeof ReportInputSchema>;

export interface ThreatReport {
  readonly id: string;
  readonly reporterId: string;
  readonly kind: ReportKind;
  readonly summary: string;
  readonly details: string | null;
  readonly createdAt: string;
}

export interface ReportService {
  create(caller: { memberId: string }, input: ReportInput, requestId?: string): Promise<{ id: string; createdAt: string }>;
  /** Newest first; `before` is a report id (cursor). Needs `reports.read`. */
  list(caller: { memberId: string }, page?: { limit?: number; before?: string | undefined }, requestId?: string): Promise<ThreatReport[]>;
  /**
   * A report's id, reporter, kind and time, without its text (an incident opened from it names it;
   * reading the text stays with holders of `reports.read`).
   */
  find(id: string): Promise<Omit<ThreatReport, 'summary' | 'details'> | undefined>;
}

export function createReportService(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: AuditLog;
  directory: Directory;
  /** Seals report text (StaffKeys.reportKey). */
  reportKey: KeyVersions;
  notifier: Notifier;
}): ReportService {
  const { db, clock, audit, directory, reportKey, notifier } = deps;
  const aad = (r: { id: string; reporter_id: string; kind: string }) => `custos:staff|staff_reports|${r.id}|${r.reporter_id}|${r.kind}`;

  return {
    async create(caller, input, requestId) {
      const member = await directory.member(caller.memberId);
      if (member.status === 'suspended') fail(StaffErrors.STAFF_SUSPENDED, 'this staff member is suspended');
      const parsed = ReportInputSchema.safeParse(input);
      if (!parsed.success) fail(StaffErrors.STAFF_REPORT_INVALID, `invalid report: ${parsed.error.issues[0]?.path.join('.') || 'body'}`);
      const { kind, summary, details } = parsed.data;
      const now = clock.now();
      const id = newId('rpt', now.getTime());
      const createdAt = now.toISOString();
      const base = { id, reporter_id: member.id, kind };
      const sealed = sealText(reportKey, aad(base), JSON.stringify({ summary, details: details ?? null }));
      await db.transaction().execute(async (tx) => {
        await tx.insertInto('staff_reports').values({ ...base, sealed, created_at: createdAt }).execute();
        await audit.appendInTx(tx, {
          actor: `staff:${member.id}`,
          action: 'staff.report.create',
          collection: 'staff_reports',
          recordId: id,
          fields: details === undefined ? ['kind', 'summary'] : ['details', 'kind', 'summary'],
          outcome: 'success',
          requestId: requestId ?? null,
        });
      });
      await notifier.tell(
        'reports.read',
        `Custos: new staff security report (${kind})`,
        `Staff member ${member.id} filed security report ${id} of kind ${kind}. Read it in the admin console (GET /v1/staff/reports).`,
      );
      return { id, createdAt };
    },

    async list(caller, page = {}, requestId) {
      const member = await directory.authorizeMember(caller, 'reports.read');
      const limit = Math.min(Math.max(page.limit ?? 50, 1), 200);
      let q = db.selectFrom('staff_reports').selectAll();
      if (page.before !== undefined) q = q.where('id', '<', page.before);
      const rows = await q.orderBy('id', 'desc').limit(limit).execute();
      await audit.append({
        actor: `staff:${member.id}`,
        action: 'staff.report.read',
        collection: 'staff_reports',
        fields: ['details', 'summary'],
        outcome: 'success',
        requestId: requestId ?? null,
      });
      return rows.map((r) => {
        const body = JSON.parse(openText(reportKey, aad(r), r.sealed)) as { summary: string; details: string | null };
        return { id: r.id, reporterId: r.reporter_id, kind: r.kind, summary: body.summary, details: body.details, createdAt: r.created_at };
      });
    },

    async find(id) {
      const r = await db.selectFrom('staff_reports').select(['id', 'reporter_id', 'kind', 'created_at']).where('id', '=', id).executeTakeFirst();
      return r === undefined ? undefined : { id: r.id, reporterId: r.reporter_id, kind: r.kind, createdAt: r.created_at };
    },
  };
}
