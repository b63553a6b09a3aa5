import type { Kysely } from 'kysely';
import type { Clock } from '../../kernel/clock.ts';
import { fail } from '../../kernel/errors.ts';
import { newId } from '../../kernel/ids.ts';
import { Secret } from '../../kernel/secret.ts';
import type { Database } from '../../store/schema.ts';
import type { AuditLog } from '../audit/service.ts';
import { STAFF_ID_PREFIX, type Directory, type StaffMember } from './directory.ts';
import { StaffErrors } from './errors.ts';
import type { Invitations } from './invitations.ts';
import { operatorRef, type Operator, type StaffAccounts, type StaffMailer } from './ports.ts';
import type { RoleChange, RoleOutcome, RoleService } from './role-service.ts';

/**
 * The staff directory. A member is created by invitation only: the admin names an email and a
 * role, Custos creates the staff sign-in account without a password and mails a single-use,
 * short-lived link; through it the member sets a password (staff policy, PCI DSS 8.3.6) and later
 * enrols a second factor, without which the guard releases no personal data (PCI DSS 8.4.2). No
 * password is ever chosen or seen by the admin (PCI DSS 8.3.5 spirit: unique initial credential
 * set by the user). Every change is audited with the member as subject.
 */
export interface InvitationIssued {
  /** The link to send; shown once when it could not be mailed. */
  readonly link: Secret<string>;
  readonly expiresAt: string;
  readonly mailed: boolean;
}

export interface MemberInfo extends StaffMember {
  readonly email: string;
  readonly mfaEnrolled: boolean;
}

export interface MemberService {
  /**
   * Invites a member. A staff operator giving a role that grants anything creates the member as
   * `unassigned` and leaves the role pending for a second admin (`pending`); the CLI gives it at once.
   */
  create(op: Operator, input: { email: string; role: string }): Promise<{ member: StaffMember; invitation: InvitationIssued; pending: RoleChange | undefined }>;
  /** A new invitation link for a member who has not accepted yet (the old one stops working). */
  invite(op: Operator, memberId: string): Promise<InvitationIssued>;
  /** Public: sets the password through the link and activates the member. */
  acceptInvitation(input: { token: Secret<string>; password: Secret<string> }): Promise<{ memberId: string; accountId: string }>;
  get(op: Operator, id: string): Promise<MemberInfo>;
  findByEmail(op: Operator, email: string): Promise<StaffMember>;
  list(op: Operator): Promise<MemberInfo[]>;
  /** Gives a member a role (role-service.ts `assign`): a role that grants more waits for a second admin. */
  changeRole(op: Operator, id: string, role: string): Promise<RoleOutcome<StaffMember>>;
  suspend(op: Operator, id: string): Promise<StaffMember>;
  reactivate(op: Operator, id: string): Promise<StaffMember>;
}

function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

export function createMemberService(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: AuditLog;
  accounts: StaffAccounts;
  directory: Directory;
  roles: RoleService;
  invitations: Invitations;
  /** Where the admin console accepts invitations; the token travels in the fragment (#token=…), never to a server log. */
  invitationUrl: string;
  mailer?: StaffMailer | undefined;
}): MemberService {
  const { db, clock, audit, accounts, directory, roles, invitations, mailer } = deps;

  async function send(email: string, token: Secret<string>, expiresAt: string): Promise<InvitationIssued> {
    const link = new Secret(`${deps.invitationUrl}#token=${token.reveal()}`);
    let mailed = false;
    if (mailer !== undefined) {
      try {
        await mailer.send({
          to: email,
          subject: 'You are invited to the Custos staff console',
          text: `Set your password with this link (valid until ${expiresAt}, usable once):\n\n${link.reveal()}\n\nYou will then enrol an authenticator app or a passkey; personal data stays closed until you do.`,
        });
        mailed = true;
      } catch {
        mailed = false;
      }
    }
    return { link, expiresAt, mailed };
  }

  async function change(op: Operator, id: string, action: string, fields: string[], set: Partial<Database['staff_members']>, from?: Database['staff_members']['status'][]) {
    const actor = await directory.authorize(op, 'staff.manage');
    if (actor?.id === id) fail(StaffErrors.STAFF_SELF_CHANGE, 'staff members cannot suspend themselves or change their own role');
    await directory.member(id);
    await db.transaction().execute(async (tx) => {
      let q = tx.updateTable('staff_members').set({ ...set, updated_at: clock.now().toISOString() }).where('id', '=', id);
      if (from !== undefined) q = q.where('status', 'in', from);
      const result = await q.executeTakeFirst();
      // Already in that state: nothing changed, nothing to audit.
      if (Number(result.numUpdatedRows) === 0) return;
      await audit.appendInTx(tx, { actor: operatorRef(op), action, subjectId: id, collection: 'staff_members', recordId: id, fields, outcome: 'success' });
    });
    return directory.member(id);
  }

  const service: MemberService = {
    async create(op, input) {
      await directory.authorize(op, 'staff.manage');
      const role = await roles.get(input.role);
      // A role that grants anything is given through `assign`, under dual control (role-service.ts).
      const grantsAny = op.kind !== 'cli' && (role.purposes.length > 0 || role.permissions.length > 0);
      const initial = grantsAny ? 'unassigned' : role.name;
      const existing = await accounts.findByEmail('staff', input.email);
      if (existing !== undefined && (await directory.memberByAccount(existing.id)) !== undefined)
        fail(StaffErrors.STAFF_MEMBER_EXISTS, 'that email already belongs to a staff member');
      const accountId = existing?.id ?? (await accounts.create({ realm: 'staff', email: input.email })).account.id;
      const now = clock.now();
      const id = newId(STAFF_ID_PREFIX, now.getTime());
      const at = now.toISOString();
      let issued: { token: Secret<string>; expiresAt: string };
      try {
        issued = await db.transaction().execute(async (tx) => {
          await tx
            .insertInto('staff_members')
            .values({ id, account_id: accountId, role: initial, status: 'invited', created_by: operatorRef(op), created_at: at, updated_at: at, suspended_at: null, training_alerted_at: null })
            .execute();
          await audit.appendInTx(tx, { actor: operatorRef(op), action: 'staff.member.create', subjectId: id, collection: 'staff_members', recordId: id, fields: ['role'], outcome: 'success' });
          return invitations.issue(tx, id);
        });
      } catch (error) {
        if (isUniqueViolation(error)) fail(StaffErrors.STAFF_MEMBER_EXISTS, 'that email already belongs to a staff member');
        throw error;
      }
      const pending = grantsAny ? (await roles.assign(op, id, role.name)).pending : undefined;
      const email = existing?.email ?? (await accounts.get(accountId)).email;
      return { member: await directory.member(id), invitation: await send(email, issued.token, issued.expiresAt), pending };
    },

    async invite(op, memberId) {
      await directory.authorize(op, 'staff.manage');
      const member = await directory.member(memberId);
      if (member.status !== 'invited') fail(StaffErrors.STAFF_MEMBER_NOT_INVITED, 'the staff member already accepted an invitation');
      const issued = await db.transaction().execute(async (tx) => {
        await audit.appendInTx(tx, { actor: operatorRef(op), action: 'staff.member.invite', subjectId: member.id, collection: 'staff_members', recordId: member.id, outcome: 'success' });
        return invitations.issue(tx, member.id);
      });
      return send((await accounts.get(member.accountId)).email, issued.token, issued.expiresAt);
    },

    async acceptInvitation({ token, password }) {
      const invitation = await invitations.check(token);
      const member = await directory.member(invitation.memberId);
      if (member.status === 'suspended') fail(StaffErrors.STAFF_SUSPENDED, 'this staff member is suspended');
      const usedAt = await invitations.consume(invitation.id);
      if (usedAt === undefined) fail(StaffErrors.STAFF_INVITATION_USED, 'the invitation link was already used');
      try {
        await accounts.setPassword(member.accountId, password);
      } catch (error) {
        // A refused password must not burn the link: the member tries another one.
        await invitations.release(invitation.id, usedAt);
        throw error;
      }
      await accounts.markEmailVerified(member.accountId);
      await db.transaction().execute(async (tx) => {
        await tx.updateTable('staff_members').set({ status: 'active', updated_at: clock.now().toISOString() }).where('id', '=', member.id).where('status', '=', 'invited').execute();
        await audit.appendInTx(tx, { actor: `staff:${member.id}`, action: 'staff.member.accept', subjectId: member.id, collection: 'staff_members', recordId: member.id, outcome: 'success' });
      });
      return { memberId: member.id, accountId: member.accountId };
    },

    async get(op, id) {
      if (op.kind === 'staff' && op.memberId === id) await directory.authorizeSelf(op);
      else await directory.authorize(op, 'staff.manage');
      const member = await directory.member(id);
      return { ...member, email: (await accounts.get(member.accountId)).email, mfaEnrolled: await accounts.hasSecondFactor(member.accountId) };
    },

    async findByEmail(op, email) {
      await directory.authorize(op, 'staff.manage');
      const account = await accounts.findByEmail('staff', email);
      const member = account === undefined ? undefined : await directory.memberByAccount(account.id);
      if (member === undefined) fail(StaffErrors.STAFF_NOT_FOUND, 'no staff member with that email');
      return member;
    },

    async list(op) {
      await directory.authorize(op, 'staff.manage');
      const rows = await db.selectFrom('staff_members').selectAll().orderBy('id').execute();
      const out: MemberInfo[] = [];
      for (const row of rows) {
        const member = await directory.toMember(row);
        out.push({ ...member, email: (await accounts.get(member.accountId)).email, mfaEnrolled: await accounts.hasSecondFactor(member.accountId) });
      }
      return out;
    },

    changeRole: (op, id, role) => roles.assign(op, id, role),

    async suspend(op, id) {
      return change(op, id, 'staff.member.suspend', ['status'], { status: 'suspended', suspended_at: clock.now().toISOString() }, ['invited', 'active']);
    },

    async reactivate(op, id) {
      const accepted = await db.selectFrom('staff_invitations').select('id').where('member_id', '=', id).where('used_at', 'is not', null).limit(1).executeTakeFirst();
      return change(op, id, 'staff.member.reactivate', ['status'], { status: accepted === undefined ? 'invited' : 'active', suspended_at: null }, ['suspended']);
    },
  };
  return service;
}
