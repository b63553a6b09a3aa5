import type { Kysely } from 'kysely';
import type { Clock } from '../../kernel/clock.ts';
import type { Database } from '../../store/schema.ts';
import type { AuditLog } from '../audit/service.ts';
import type { Actor, PolicyGuard } from '../policy/service.ts';
import { createDirectory, type Directory } from './directory.ts';
import { createElevationService, type ElevationService } from './elevation-service.ts';
import { createStaffGuard, createStaffStanding, staffActor, type StaffStanding } from './guard.ts';
import { createInvitations } from './invitations.ts';
import type { StaffKeys } from './keys.ts';
import { createMemberService, type MemberService } from './member-service.ts';
import { createNotifier, type Notifier } from './notify.ts';
import type { StaffAccounts, StaffMailer } from './ports.ts';
import { createReportService, type ReportService } from './report-service.ts';
import { createRoleService, type RoleService } from './role-service.ts';
import { createRoleStore } from './roles.ts';
import { createTrainingService, type TrainingService } from './training-service.ts';

export interface StaffServices {
  readonly roles: RoleService;
  readonly directory: Directory;
  readonly members: MemberService;
  readonly training: TrainingService;
  readonly elevations: ElevationService;
  readonly reports: ReportService;
  readonly standing: StaffStanding;
  /** Add to `createPolicyService({ guards: [...] })`. */
  readonly guard: PolicyGuard;
  /** Mails the holders of a permission (ids and kinds only). */
  readonly notifier: Notifier;
  /** The actor a staff session reads the vault as (role purposes + purposes held by elevation). */
  actorFor(memberId: string): Promise<Actor>;
}

export interface StaffDeps {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly audit: AuditLog;
  /** identity's AccountService. */
  readonly accounts: StaffAccounts;
  /** From `deriveStaffKeys({ base })`, base = HKDF(root, 'custos/staff/v1'). */
  readonly keys: StaffKeys;
  /** The inventory's purposes (`inventory.purposes`). */
  readonly knownPurposes: { has(name: string): boolean };
  /** Where the admin console accepts invitations, e.g. https://admin.shop.example/staff/accept. */
  readonly invitationUrl: string;
  readonly mailer?: StaffMailer | undefined;
  /** CUSTOS_TRAINING_VALIDITY_MONTHS; default 12. */
  readonly trainingValidityMonths?: number | undefined;
  /** Default 24. */
  readonly invitationTtlHours?: number | undefined;
  /** How recent a second-factor check must be for break-glass; default 5 minutes. */
  readonly breakGlassFreshMfaMs?: number | undefined;
}

/**
 * Wires the staff capability in one call, for the runtime (and tests): one directory, one
 * notifier, the services over them, the policy guard and the actor factory for staff sessions.
 */
export function createStaffServices(deps: StaffDeps): StaffServices {
  const { db, clock, audit, accounts, keys, knownPurposes, mailer } = deps;
  const roleStore = createRoleStore({ db, clock, knownPurposes });
  const directory = createDirectory({ db, roles: roleStore, mfa: accounts });
  const notifier = createNotifier({ directory, accounts, mailer });
  const roles = createRoleService({ db, clock, audit, directory, store: roleStore, notifier });
  const training = createTrainingService({
    db,
    clock,
    audit,
    directory,
    roles,
    notifier,
    ...(deps.trainingValidityMonths === undefined ? {} : { validityMonths: deps.trainingValidityMonths }),
  });
  const standing = createStaffStanding({ directory, training });
  const elevations = createElevationService({
    db,
    clock,
    audit,
    directory,
    reasonKey: keys.reasonKey,
    knownPurposes,
    requireStanding: (m) => standing.require(m),
    notifier,
    ...(deps.breakGlassFreshMfaMs === undefined ? {} : { freshMfaMs: deps.breakGlassFreshMfaMs }),
  });
  const invitations = createInvitations({ db, clock, ...(deps.invitationTtlHours === undefined ? {} : { ttlHours: deps.invitationTtlHours }) });
  const members = createMemberService({ db, clock, audit, accounts, directory, roles, invitations, invitationUrl: deps.invitationUrl, mailer });
  const reports = createReportService({ db, clock, audit, directory, reportKey: keys.reportKey, notifier });
  const guard = createStaffGuard({ directory, training, elevations, audit });
  return {
    roles,
    directory,
    members,
    training,
    elevations,
    reports,
    standing,
    guard,
    notifier,
    async actorFor(memberId) {
      const member = await directory.member(memberId);
      return staffActor(member, await elevations.activePurposes(member.id));
    },
  };
}
