import { AppError, fail } from '../../kernel/errors.ts';
import type { AuditLog } from '../audit/service.ts';
import type { Actor, PolicyGuard } from '../policy/service.ts';
import type { Directory, StaffMember } from './directory.ts';
import type { ElevationService } from './elevation-service.ts';
import { StaffErrors } from './errors.ts';
import type { TrainingService } from './training-service.ts';

/**
 * How staff read personal data: a staff session is an `Actor` of kind 'staff' whose purposes are
 * its role's (plus any it holds by elevation), and the policy decision point runs this guard
 * before any field is released. The guard reloads the member on every read and refuses, in this
 * order: suspended or not yet active (STAFF_SUSPENDED, STAFF_NOT_ACTIVE); no second factor
 * (STAFF_MFA_REQUIRED — PCI DSS 4.0.1 8.4.2, MFA for all access into the cardholder data
 * environment); required training missing or expired (STAFF_TRAINING_REQUIRED — PCI DSS 12.6.3);
 * a purpose beyond the role without an active elevation for THIS customer
 * (STAFF_ELEVATION_REQUIRED — least privilege, PCI DSS 7.2.2). Every refusal is audited as a
 * failed authorisation (ASVS 16.3.2), and training refusals tell the training managers.
 */
const STAFF_REF = /^staff:(stf_[0-9A-HJKMNP-TV-Z]{26})$/;

/** The actor of a staff session: role purposes plus those held by elevation (the guard narrows them per customer). */
export function staffActor(member: Pick<StaffMember, 'id' | 'purposes'>, elevatedPurposes: readonly string[] = []): Actor {
  return Object.freeze({
    ref: `staff:${member.id}`,
    kind: 'staff' as const,
    purposes: Object.freeze([...new Set([...member.purposes, ...elevatedPurposes])].sort()),
  });
}

/** The member id in a staff actor's ref, or undefined for a ref that is not a staff member's. */
export function staffMemberId(ref: string): string | undefined {
  return STAFF_REF.exec(ref)?.[1];
}

export interface StaffStanding {
  /** Throws STAFF_SUSPENDED, STAFF_NOT_ACTIVE, STAFF_MFA_REQUIRED or STAFF_TRAINING_REQUIRED. */
  require(member: StaffMember): Promise<void>;
}

export function createStaffStanding(deps: { directory: Directory; training: Pick<TrainingService, 'missingFor'> }): StaffStanding {
  const { directory, training } = deps;
  return {
    async require(member) {
      directory.requireActive(member);
      await directory.requireMfa(member);
      const missing = await training.missingFor(member);
      if (missing.length > 0)
        fail(StaffErrors.STAFF_TRAINING_REQUIRED, 'required training is missing or expired; no access to personal data until it is recorded', {
          courses: missing,
        });
    },
  };
}

const DENIAL_ACTIONS: Record<string, string> = {
  [StaffErrors.STAFF_SUSPENDED.code]: 'staff.access.suspended',
  [StaffErrors.STAFF_NOT_ACTIVE.code]: 'staff.access.not_active',
  [StaffErrors.STAFF_MFA_REQUIRED.code]: 'staff.access.mfa_required',
  [StaffErrors.STAFF_ELEVATION_REQUIRED.code]: 'staff.access.elevation_required',
};

/** The policy guard for staff actors; other actors pass through untouched. */
export function createStaffGuard(deps: {
  directory: Directory;
  training: Pick<TrainingService, 'missingFor' | 'noteRefusal'>;
  elevations: Pick<ElevationService, 'activeFor'>;
  audit: Pick<AuditLog, 'append'>;
}): PolicyGuard {
  const { directory, training, elevations, audit } = deps;
  const standing = createStaffStanding({ directory, training });

  return async (actor, purpose, subjectId) => {
    if (actor.kind !== 'staff') return;
    const memberId = staffMemberId(actor.ref);
    if (memberId === undefined) fail(StaffErrors.STAFF_NOT_FOUND, 'the staff actor names no staff member');
    const member = await directory.member(memberId);
    try {
      await standing.require(member);
      if (member.purposes.includes(purpose)) return;
      const elevation = await elevations.activeFor(member.id, subjectId, purpose);
      if (elevation === undefined)
        fail(StaffErrors.STAFF_ELEVATION_REQUIRED, 'this purpose is beyond the role and no elevation for this customer is active');
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      if (error.code === StaffErrors.STAFF_TRAINING_REQUIRED.code) await training.noteRefusal(member, { purpose, subjectId });
      else {
        const action = DENIAL_ACTIONS[error.code];
        if (action !== undefined) await audit.append({ actor: actor.ref, action, subjectId, purpose, outcome: 'denied' });
      }
      throw error;
    }
  };
}
