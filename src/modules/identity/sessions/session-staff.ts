import { fail } from '../../../kernel/errors.ts';
import type { AuditLog } from '../../audit/service.ts';
import type { Actor } from '../../policy/service.ts';
import { StaffErrors } from '../../staff/errors.ts';
import type { StaffContext } from '../../staff/ports.ts';
import type { StaffServices } from '../../staff/services.ts';
import type { AccountInfo } from '../accounts/account-service.ts';
import type { Realm } from '../passwords/password-policy.ts';
import { SessionErrors } from './session-errors.ts';
import type { SessionService, SessionView } from './session-service.ts';

/**
 * Where staff sessions meet the staff capability. A staff session becomes a `StaffContext`
 * (`request.staff`) for the staff routes and an `Actor` of kind 'staff' for the vault routes; both
 * only once a second factor was verified IN THIS SESSION (PCI DSS 4.0.1 8.4.2: MFA for all access
 * into the cardholder data environment; the staff guard then checks enrolment, standing, training
 * and elevation on every read). A suspended member cannot sign in at all.
 */
export function staffSignInStanding(staff: () => StaffServices | undefined) {
  return async (realm: Realm, account: AccountInfo): Promise<void> => {
    if (realm !== 'staff') return;
    const services = staff();
    if (services === undefined) throw new Error('the staff services are not wired');
    const member = await services.directory.memberByAccount(account.id);
    if (member === undefined) fail(StaffErrors.STAFF_NOT_FOUND, 'this sign-in belongs to no staff member');
    services.directory.requireActive(member);
  };
}

export interface StaffSessionDeps {
  readonly staff: Pick<StaffServices, 'directory'>;
  readonly audit: Pick<AuditLog, 'append'>;
  readonly sessions: Pick<SessionService, 'revoke'>;
  readonly requestId: string;
}

/**
 * The staff member behind a session. A session older than the member's last change (role,
 * suspension, reactivation) is revoked: a privilege change must come with a new token (ASVS
 * 7.2.4), and the member gets one by signing in again. A session without a verified second factor
 * is refused (audited as a failed authorisation, ASVS 16.3.2).
 */
export async function staffContextOf(session: SessionView, deps: StaffSessionDeps): Promise<StaffContext> {
  const member = await deps.staff.directory.memberByAccount(session.accountId);
  if (member === undefined) fail(StaffErrors.STAFF_NOT_FOUND, 'this session belongs to no staff member');
  deps.staff.directory.requireActive(member);
  if (member.updatedAt > (session.rotatedAt ?? session.createdAt)) {
    await deps.sessions.revoke(session.accountId, session.id, 'privilege_change');
    await deps.audit.append({ actor: `staff:${member.id}`, action: 'identity.session_revoked', subjectId: member.id, outcome: 'success', requestId: deps.requestId });
    fail(SessionErrors.IDENTITY_SESSION_REQUIRED, 'the staff member changed (role or status) since this sign-in; sign in again');
  }
  if (session.mfaVerifiedAt === null) {
    await deps.audit.append({ actor: `staff:${member.id}`, action: 'staff.access.mfa_required', outcome: 'denied', requestId: deps.requestId });
    fail(StaffErrors.STAFF_MFA_REQUIRED, 'verify a second factor in this session (enrol one first if needed) before any access to personal data');
  }
  return Object.freeze({ memberId: member.id, role: member.role, mfaVerifiedAt: session.mfaVerifiedAt });
}

/** The vault actor of a staff session: role purposes plus those held by elevation (the staff guard narrows them per customer). */
export async function staffActorOf(session: SessionView, deps: StaffSessionDeps & { staff: Pick<StaffServices, 'directory' | 'actorFor'> }): Promise<Actor> {
  const ctx = await staffContextOf(session, deps);
  return deps.staff.actorFor(ctx.memberId);
}
