import type { Kysely } from 'kysely';
import { AppError, fail } from '../../kernel/errors.ts';
import { isId } from '../../kernel/ids.ts';
import type { Database } from '../../store/schema.ts';
import { StaffErrors } from './errors.ts';
import type { Operator, StaffMfaStatus } from './ports.ts';
import type { Permission, RoleStore } from './roles.ts';

/**
 * Reading members and checking their standing, shared by every staff service: a member is loaded
 * fresh from the database on every check, so a suspension or a role change applies to the next
 * request, not to the next sign-in (ASVS 8.3.x: authorisation enforced server-side, per request).
 */
export const STAFF_ID_PREFIX = 'stf';

export interface StaffMember {
  readonly id: string;
  readonly accountId: string;
  readonly role: string;
  readonly status: 'invited' | 'active' | 'suspended';
  /** Purposes the role may state (from the role, resolved at load time). */
  readonly purposes: readonly string[];
  readonly permissions: readonly Permission[];
  readonly createdAt: string;
  readonly updatedAt: string;
  readonly suspendedAt: string | null;
}

export type MemberRow = Database['staff_members'];

export interface Directory {
  /** The member, or STAFF_NOT_FOUND. */
  member(id: string): Promise<StaffMember>;
  memberByAccount(accountId: string): Promise<StaffMember | undefined>;
  toMember(row: MemberRow): Promise<StaffMember>;
  /** STAFF_SUSPENDED / STAFF_NOT_ACTIVE unless the member is active. */
  requireActive(member: StaffMember): void;
  /** STAFF_MFA_REQUIRED unless the member's account has TOTP on or a passkey (PCI DSS 4.0.1 8.4.2). */
  requireMfa(member: StaffMember): Promise<void>;
  /**
   * For a staff operator: active, second factor enrolled, and the role grants `permission`
   * (PCI DSS 4.0.1 7.2.2, 8.4.1). The CLI operator holds the database and keys and is not checked.
   */
  authorize(op: Operator, permission: Permission | null): Promise<StaffMember | undefined>;
  /**
   * A member acting on their own record (profile, own training, the role and course lists): active
   * is enough, no second factor yet — the member must be able to see that one is needed.
   */
  authorizeSelf(caller: { memberId: string }): Promise<StaffMember>;
  /** `authorize` for a signed-in member: returns the member it checked. */
  authorizeMember(caller: { memberId: string }, permission: Permission | null): Promise<StaffMember>;
  /** Active members whose role grants `permission` (for notices to admins or security officers). */
  holders(permission: Permission): Promise<StaffMember[]>;
}

export function createDirectory(deps: { db: Kysely<Database>; roles: Pick<RoleStore, 'get'>; mfa: StaffMfaStatus }): Directory {
  const { db, roles, mfa } = deps;

  async function toMember(row: MemberRow): Promise<StaffMember> {
    // A role removed behind the service's back grants nothing rather than failing every request.
    const role = await roles.get(row.role).catch((error: unknown) => {
      if (error instanceof AppError && error.code === StaffErrors.STAFF_ROLE_UNKNOWN.code) return undefined;
      throw error;
    });
    return {
      id: row.id,
      accountId: row.account_id,
      role: row.role,
      status: row.status,
      purposes: role?.purposes ?? [],
      permissions: role?.permissions ?? [],
      createdAt: row.created_at,
      updatedAt: row.updated_at,
      suspendedAt: row.suspended_at,
    };
  }

  const directory: Directory = {
    async member(id) {
      if (!isId(STAFF_ID_PREFIX, id)) fail(StaffErrors.STAFF_NOT_FOUND, 'no staff member with that id');
      const row = await db.selectFrom('staff_members').selectAll().where('id', '=', id).executeTakeFirst();
      if (row === undefined) fail(StaffErrors.STAFF_NOT_FOUND, 'no staff member with that id');
      return toMember(row);
    },

    async memberByAccount(accountId) {
      const row = await db.selectFrom('staff_members').selectAll().where('account_id', '=', accountId).executeTakeFirst();
      return row === undefined ? undefined : toMember(row);
    },

    toMember,

    requireActive(member) {
      if (member.status === 'suspended') fail(StaffErrors.STAFF_SUSPENDED, 'this staff member is suspended');
      if (member.status !== 'active') fail(StaffErrors.STAFF_NOT_ACTIVE, 'this staff member has not accepted the invitation yet');
    },

    async requireMfa(member) {
      if (!(await mfa.hasSecondFactor(member.accountId)))
        fail(StaffErrors.STAFF_MFA_REQUIRED, 'enrol an authenticator app or a passkey before any access to personal data');
    },

    async authorize(op, permission) {
      return op.kind === 'cli' ? undefined : directory.authorizeMember(op, permission);
    },

    async authorizeSelf(caller) {
      const member = await directory.member(caller.memberId);
      directory.requireActive(member);
      return member;
    },

    async authorizeMember(caller, permission) {
      const member = await directory.member(caller.memberId);
      directory.requireActive(member);
      await directory.requireMfa(member);
      if (permission !== null && !member.permissions.includes(permission))
        fail(StaffErrors.STAFF_PERMISSION_DENIED, `this action needs the ${permission} permission`, { permission });
      return member;
    },

    async holders(permission) {
      const rows = await db.selectFrom('staff_members').selectAll().where('status', '=', 'active').orderBy('id').execute();
      const members = await Promise.all(rows.map(toMember));
      return members.filter((m) => m.permissions.includes(permission));
    },
  };
  return directory;
}
