import type { KeyVersions } from '../../crypto/key-versions.ts';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { Clock } from '../../kernel/clock.ts';
import { fail } from '../../kernel/errors.ts';
import { isId, newId } from '../../kernel/ids.ts';
import type { Database } from '../../store/schema.ts';
import type { AuditLog } from '../audit/service.ts';
import type { Directory, StaffMember } from './directory.ts';
import { awaitsDecision } from './dual-control.ts';
import { StaffErrors } from './errors.ts';
import { openText, sealText } from './keys.ts';
import type { Notifier } from './notify.ts';
import { operatorRef, type StaffContext } from './ports.ts';

/**
 * Just-in-time elevation: a member asks for one purpose beyond their role, for ONE customer, for a
 * stated reason and a bounded time (default 1 h, at most 8 h). A second person with
 * `elevation.approve` grants it (dual control; PCI DSS 4.0.1 7.2.2 least privilege, 10.2.1.2
 * administrative actions logged), or the member breaks the glass after a second factor verified
 * within the last 5 minutes (ASVS 7.5.x step-up re-authentication): granted at once, audited as
 * `staff.elevation.break_glass` so detection alerts, and mailed to the approvers. Reasons are
 * sealed at rest: they may name people.
 */
export const DEFAULT_ELEVATION_MINUTES = 60;
export const MAX_ELEVATION_MINUTES = 480;
export { PENDING_TTL_MS } from './dual-control.ts';
export const DEFAULT_FRESH_MFA_MS = 5 * 60_000;

export const ElevationRequestSchema = z.object({
  customerId: z.string().refine((v) => isId('cus', v), 'must be a cus_ id'),
  purpose: z.string().regex(/^[a-z][a-z0-9_.-]{0,63}$/),
  reason: z.string().trim().min(10).max(500),
  durationMinutes: z.number().int().min(5).max(MAX_ELEVATION_MINUTES).default(DEFAULT_ELEVATION_MINUTES),
  breakGlass: z.boolean().default(false),
});
export type ElevationRequest = z.input<typeof ElevationRequestSchema>;

export interface Elevation {
  readonly id: string;
  readonly memberId: string;
  readonly customerId: string;
  readonly purpose: string;
  readonly reason: string;
  readonly durationMinutes: number;
  readonly breakGlass: boolean;
  /** 'expired' is derived: active with its end in the past. */
  readonly status: 'pending' | 'active' | 'expired' | 'denied' | 'revoked';
  readonly requestedAt: string;
  readonly decidedBy: string | null;
  readonly decidedAt: string | null;
  readonly expiresAt: string | null;
}

type Caller = Pick<StaffContext, 'memberId' | 'mfaVerifiedAt'>;

export interface ElevationService {
  /** Asks (pending) or, with `breakGlass` and a fresh second factor, grants at once. */
  request(caller: Caller, input: ElevationRequest): Promise<Elevation>;
  approve(caller: Caller, id: string): Promise<Elevation>;
  deny(caller: Caller, id: string): Promise<Elevation>;
  /** Ends an active or pending elevation early: the requester, or anyone who may approve. */
  revoke(caller: Caller, id: string): Promise<Elevation>;
  /** The caller's own elevations; approvers see every member's. Newest first. */
  list(caller: Caller, filter?: { status?: Elevation['status'] | undefined }): Promise<Elevation[]>;
  /** For the guard: the active elevation of this member for this customer and purpose, if any. */
  activeFor(memberId: string, customerId: string, purpose: string): Promise<Elevation | undefined>;
  /** For `staffActor`: purposes the member currently holds by elevation (for some customer). */
  activePurposes(memberId: string): Promise<string[]>;
}

export function createElevationService(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: AuditLog;
  directory: Directory;
  /** Seals elevation reasons (StaffKeys.reasonKey). */
  reasonKey: KeyVersions;
  knownPurposes: { has(name: string): boolean };
  /** Raises the standing a requester needs (training, in the guard's terms); throws to refuse. */
  requireStanding: (member: StaffMember) => Promise<void>;
  notifier: Notifier;
  freshMfaMs?: number;
}): ElevationService {
  const { db, clock, audit, directory, reasonKey, notifier } = deps;
  const freshMs = deps.freshMfaMs ?? DEFAULT_FRESH_MFA_MS;
  const aad = (r: { id: string; member_id: string; customer_id: string; purpose: string }) =>
    `custos:staff|staff_elevations|${r.id}|${r.member_id}|${r.customer_id}|${r.purpose}|reason`;
  const nowIso = () => clock.now().toISOString();

  function view(r: Database['staff_elevations']): Elevation {
    const lapsed = r.status === 'active' && r.expires_at !== null && r.expires_at <= nowIso();
    return {
      id: r.id,
      memberId: r.member_id,
      customerId: r.customer_id,
      purpose: r.purpose,
      reason: openText(reasonKey, aad(r), r.reason_sealed),
      durationMinutes: r.duration_minutes,
      breakGlass: r.break_glass === 1,
      status: lapsed ? 'expired' : r.status,
      requestedAt: r.requested_at,
      decidedBy: r.decided_by,
      decidedAt: r.decided_at,
      expiresAt: r.expires_at,
    };
  }

  async function load(id: string) {
    const row = isId('elv', id) ? await db.selectFrom('staff_elevations').selectAll().where('id', '=', id).executeTakeFirst() : undefined;
    if (row === undefined) fail(StaffErrors.STAFF_ELEVATION_NOT_FOUND, 'no elevation with that id');
    return row;
  }

  function freshMfa(at: Date | string | null): boolean {
    if (at === null) return false;
    const t = (at instanceof Date ? at : new Date(at)).getTime();
    const now = clock.now().getTime();
    return Number.isFinite(t) && t <= now + 1000 && now - t <= freshMs;
  }

  async function decide(caller: Caller, id: string, outcome: 'active' | 'denied'): Promise<Elevation> {
    const approver = await directory.authorizeMember(caller, 'elevation.approve');
    const row = await load(id);
    if (row.member_id === approver.id) fail(StaffErrors.STAFF_ELEVATION_SELF_APPROVAL, 'an elevation must be approved by a second person');
    const now = clock.now();
    if (!awaitsDecision(row, now))
      fail(StaffErrors.STAFF_ELEVATION_NOT_PENDING, 'the elevation is not waiting for a decision');
    const expiresAt = outcome === 'active' ? new Date(now.getTime() + row.duration_minutes * 60_000).toISOString() : null;
    await db.transaction().execute(async (tx) => {
      const result = await tx
        .updateTable('staff_elevations')
        .set({ status: outcome, decided_by: caller.memberId, decided_at: now.toISOString(), expires_at: expiresAt })
        .where('id', '=', id)
        .where('status', '=', 'pending')
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) fail(StaffErrors.STAFF_ELEVATION_NOT_PENDING, 'the elevation is not waiting for a decision');
      await audit.appendInTx(tx, {
        actor: operatorRef({ kind: 'staff', ...caller }),
        action: outcome === 'active' ? 'staff.elevation.approve' : 'staff.elevation.deny',
        subjectId: row.customer_id,
        collection: 'staff_elevations',
        recordId: id,
        purpose: row.purpose,
        outcome: 'success',
      });
    });
    return view(await load(id));
  }

  return {
    async request(caller, input) {
      const member = await directory.authorizeMember(caller, null);
      const parsed = ElevationRequestSchema.safeParse(input);
      if (!parsed.success) fail(StaffErrors.STAFF_ELEVATION_INVALID, `invalid elevation request: ${parsed.error.issues[0]?.path.join('.') || 'body'}`);
      const req = parsed.data;
      if (!deps.knownPurposes.has(req.purpose)) fail(StaffErrors.STAFF_ELEVATION_INVALID, 'the purpose is not declared in the inventory');
      if (member.purposes.includes(req.purpose)) fail(StaffErrors.STAFF_ELEVATION_NEEDLESS, 'the role already covers that purpose');
      await deps.requireStanding(member);
      if (req.breakGlass && !freshMfa(caller.mfaVerifiedAt))
        fail(StaffErrors.STAFF_FRESH_MFA_REQUIRED, 'break-glass access needs a second factor verified within the last 5 minutes');
      const now = clock.now();
      const id = newId('elv', now.getTime());
      const base = { id, member_id: member.id, customer_id: req.customerId, purpose: req.purpose };
      const row: Database['staff_elevations'] = {
        ...base,
        reason_sealed: sealText(reasonKey, aad(base), req.reason),
        duration_minutes: req.durationMinutes,
        break_glass: req.breakGlass ? 1 : 0,
        status: req.breakGlass ? 'active' : 'pending',
        requested_at: now.toISOString(),
        decided_by: null,
        decided_at: req.breakGlass ? now.toISOString() : null,
        expires_at: req.breakGlass ? new Date(now.getTime() + req.durationMinutes * 60_000).toISOString() : null,
        revoked_at: null,
      };
      await db.transaction().execute(async (tx) => {
        await tx.insertInto('staff_elevations').values(row).execute();
        await audit.appendInTx(tx, {
          actor: `staff:${member.id}`,
          action: req.breakGlass ? 'staff.elevation.break_glass' : 'staff.elevation.request',
          subjectId: req.customerId,
          collection: 'staff_elevations',
          recordId: id,
          purpose: req.purpose,
          outcome: 'success',
        });
      });
      if (req.breakGlass)
        await notifier.tell(
          'elevation.approve',
          'Custos: break-glass access was used',
          `Staff member ${member.id} granted themselves the purpose ${req.purpose} for customer ${req.customerId} until ${row.expires_at ?? ''} (elevation ${id}).\nReview it, and revoke it if it was not justified.`,
        );
      return view(row);
    },

    approve: (caller, id) => decide(caller, id, 'active'),
    deny: (caller, id) => decide(caller, id, 'denied'),

    async revoke(caller, id) {
      const member = await directory.authorizeMember(caller, null);
      const row = await load(id);
      if (row.member_id !== member.id && !member.permissions.includes('elevation.approve'))
        fail(StaffErrors.STAFF_PERMISSION_DENIED, 'only the requester or an approver may revoke an elevation', { permission: 'elevation.approve' });
      const at = nowIso();
      await db.transaction().execute(async (tx) => {
        const result = await tx
          .updateTable('staff_elevations')
          .set({ status: 'revoked', revoked_at: at })
          .where('id', '=', id)
          .where('status', 'in', ['pending', 'active'])
          .executeTakeFirst();
        if (Number(result.numUpdatedRows) !== 1) fail(StaffErrors.STAFF_ELEVATION_NOT_PENDING, 'the elevation is neither pending nor active');
        await audit.appendInTx(tx, { actor: `staff:${member.id}`, action: 'staff.elevation.revoke', subjectId: row.customer_id, collection: 'staff_elevations', recordId: id, purpose: row.purpose, outcome: 'success' });
      });
      return view(await load(id));
    },

    async list(caller, filter = {}) {
      const member = await directory.authorizeMember(caller, null);
      let q = db.selectFrom('staff_elevations').selectAll();
      if (!member.permissions.includes('elevation.approve')) q = q.where('member_id', '=', member.id);
      const rows = await q.orderBy('requested_at', 'desc').orderBy('id', 'desc').limit(500).execute();
      const views = rows.map(view);
      return filter.status === undefined ? views : views.filter((e) => e.status === filter.status);
    },

    async activeFor(memberId, customerId, purpose) {
      const row = await db
        .selectFrom('staff_elevations')
        .selectAll()
        .where('member_id', '=', memberId)
        .where('customer_id', '=', customerId)
        .where('purpose', '=', purpose)
        .where('status', '=', 'active')
        .where('expires_at', '>', nowIso())
        .orderBy('expires_at', 'desc')
        .limit(1)
        .executeTakeFirst();
      return row === undefined ? undefined : view(row);
    },

    async activePurposes(memberId) {
      const rows = await db
        .selectFrom('staff_elevations')
        .select('purpose')
        .distinct()
        .where('member_id', '=', memberId)
        .where('status', '=', 'active')
        .where('expires_at', '>', nowIso())
        .execute();
      return rows.map((r) => r.purpose).sort();
    },
  };
}
