import type { Kysely, Transaction } from 'kysely';
import type { Clock } from '../../kernel/clock.ts';
import { fail } from '../../kernel/errors.ts';
import { isId, newId } from '../../kernel/ids.ts';
import type { Database } from '../../store/schema.ts';
import type { AuditLog } from '../audit/service.ts';
import type { Directory, StaffMember } from './directory.ts';
import { awaitsDecision } from './dual-control.ts';
import { StaffErrors } from './errors.ts';
import type { Notifier } from './notify.ts';
import { operatorRef, type Operator } from './ports.ts';
import type { Permission, RoleDef, RoleInput, RoleStore } from './roles.ts';

/**
 * Changing roles, and who holds them, under dual control (PCI DSS 4.0.1 7.2.2 least privilege,
 * 7.2.4 access reviewed; 10.2.1.2 administrative actions logged). Every definition, removal and
 * assignment is audited with the content it sets: role name, purposes, permissions (never the
 * description's text, never personal data). A change that only takes away applies at once; one
 * that grants — a new or widened role, a role given to a member — waits, pending, until a second
 * admin approves it (the shape of elevations: dual-control.ts). A change that both takes away and
 * grants applies its narrowing part at once and waits for the rest. The `custos` CLI, run by the
 * operator who holds the database and keys, applies at once and is audited as 'cli'. Members
 * read roles fresh on every request (directory.ts), so a change holds for live sessions at once.
 */
export interface RoleChange {
  readonly id: string;
  readonly kind: 'define' | 'assign';
  readonly role: string;
  /** The member given the role (kind 'assign'). */
  readonly memberId: string | null;
  /** The requested definition (kind 'define'). */
  readonly definition: Pick<RoleDef, 'description' | 'purposes' | 'permissions'> | null;
  /** 'expired' is derived: pending and older than 24 hours. */
  readonly status: 'pending' | 'applied' | 'denied' | 'expired';
  readonly requestedBy: string;
  readonly requestedAt: string;
  readonly decidedBy: string | null;
  readonly decidedAt: string | null;
}

/** What a change did: applied (change undefined, or applied) or left waiting for a second admin. */
export interface RoleOutcome<T> {
  readonly result: T;
  readonly pending: RoleChange | undefined;
}

export interface RoleService {
  list(): Promise<RoleDef[]>;
  get(name: string): Promise<RoleDef>;
  /** Adds or replaces a custom role (roles.manage); what it grants waits for a second admin. */
  define(op: Operator, input: RoleInput): Promise<RoleOutcome<RoleDef | undefined>>;
  /** Removes a custom role nobody holds (roles.manage); applies at once. */
  remove(op: Operator, name: string): Promise<void>;
  /** Gives a member a role (staff.manage); a role that grants more than the member's current one waits. */
  assign(op: Operator, memberId: string, role: string): Promise<RoleOutcome<StaffMember>>;
  /** Role changes, newest first, for holders of roles.manage or staff.manage. */
  changes(op: Operator, filter?: { status?: RoleChange['status'] | undefined }): Promise<RoleChange[]>;
  /** A second admin applies a pending change: roles.manage for definitions, staff.manage for assignments. */
  approve(op: Operator, id: string): Promise<RoleChange>;
  /** Refuses a pending change: an admin who may approve it, or its requester withdrawing it. */
  deny(op: Operator, id: string): Promise<RoleChange>;
}

type Content = Pick<RoleDef, 'purposes' | 'permissions'>;
const contentJson = (c: Content | undefined) => (c === undefined ? null : JSON.stringify({ purposes: c.purposes, permissions: c.permissions }));
const within = (a: readonly string[], b: readonly string[]) => a.every((x) => b.includes(x));
/** True when `next` holds a purpose or permission that `current` does not. */
const grants = (next: Content, current: Content | undefined) =>
  !within(next.purposes, current?.purposes ?? []) || !within(next.permissions, current?.permissions ?? []);
/** An audit entry's field list for a role's content: names only. */
const contentFields = (name: string, c: Content | undefined, withDescription = false) => [
  `role.${name}`,
  ...(withDescription ? ['description'] : []),
  ...(c?.purposes ?? []).map((p) => `purposes.${p}`),
  ...(c?.permissions ?? []).map((p) => `permissions.${p}`),
];
const PERMISSION_OF: Record<RoleChange['kind'], Permission> = { define: 'roles.manage', assign: 'staff.manage' };

export function createRoleService(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: AuditLog;
  directory: Directory;
  store: RoleStore;
  /** Tells the admins who may approve that a change waits for them. */
  notifier: Notifier;
}): RoleService {
  const { db, clock, audit, directory, store, notifier } = deps;
  const now = () => clock.now();

  function view(r: Database['staff_role_changes']): RoleChange {
    return {
      id: r.id,
      kind: r.kind,
      role: r.role,
      memberId: r.member_id,
      definition:
        r.kind === 'define'
          ? { description: r.description ?? '', purposes: JSON.parse(r.purposes ?? '[]') as string[], permissions: JSON.parse(r.permissions ?? '[]') as Permission[] }
          : null,
      status: r.status === 'pending' && !awaitsDecision(r, now()) ? 'expired' : r.status,
      requestedBy: r.requested_by,
      requestedAt: r.requested_at,
      decidedBy: r.decided_by,
      decidedAt: r.decided_at,
    };
  }

  async function load(id: string) {
    const row = isId('rch', id) ? await db.selectFrom('staff_role_changes').selectAll().where('id', '=', id).executeTakeFirst() : undefined;
    if (row === undefined) fail(StaffErrors.STAFF_ROLE_CHANGE_NOT_FOUND, 'no role change with that id');
    return row;
  }

  async function saveRole(tx: Transaction<Database>, actor: string, role: RoleDef) {
    await store.save(tx, role);
    await audit.appendInTx(tx, { actor, action: 'staff.role.define', collection: 'staff_roles', recordId: role.name, fields: contentFields(role.name, role, true), outcome: 'success' });
  }

  async function setRole(tx: Transaction<Database>, actor: string, memberId: string, role: RoleDef) {
    await tx.updateTable('staff_members').set({ role: role.name, updated_at: now().toISOString() }).where('id', '=', memberId).execute();
    await audit.appendInTx(tx, { actor, action: 'staff.member.role', subjectId: memberId, collection: 'staff_members', recordId: memberId, fields: ['role', ...contentFields(role.name, role)], outcome: 'success' });
  }

  /** Mails the admins who may approve a change (ids and names only), once it is stored. */
  async function announce(change: RoleChange) {
    const what = change.kind === 'define' ? `define the role ${change.role}` : `give member ${change.memberId ?? ''} the role ${change.role}`;
    await notifier.tell(
      PERMISSION_OF[change.kind],
      'Custos: a role change waits for a second admin',
      `${change.requestedBy} asked to ${what} (change ${change.id}). It applies once another admin approves it, and lapses after 24 hours.\n` +
        'Review it in the admin console or with `custos staff role-changes`.',
    );
  }

  async function request(tx: Transaction<Database>, op: Operator, row: Omit<Database['staff_role_changes'], 'id' | 'status' | 'requested_by' | 'requested_at' | 'decided_by' | 'decided_at'>, fields: string[]) {
    const at = now();
    const full: Database['staff_role_changes'] = {
      ...row,
      id: newId('rch', at.getTime()),
      status: 'pending',
      requested_by: operatorRef(op),
      requested_at: at.toISOString(),
      decided_by: null,
      decided_at: null,
    };
    await tx.insertInto('staff_role_changes').values(full).execute();
    await audit.appendInTx(tx, { actor: operatorRef(op), action: 'staff.role_change.request', subjectId: row.member_id, collection: 'staff_role_changes', recordId: full.id, fields, outcome: 'success' });
    return view(full);
  }

  async function decide(op: Operator, id: string, outcome: 'applied' | 'denied'): Promise<RoleChange> {
    const row = await load(id);
    const decider = await directory.authorize(op, PERMISSION_OF[row.kind]);
    const actor = operatorRef(op);
    if (outcome === 'applied' && decider !== undefined) {
      // The second person is neither the requester nor someone the change grants to.
      if (row.requested_by === actor || row.member_id === decider.id || (row.kind === 'define' && decider.role === row.role))
        fail(StaffErrors.STAFF_ROLE_CHANGE_SELF_APPROVAL, 'a role change that grants must be approved by a second admin it does not grant to');
    }
    if (!awaitsDecision(row, now())) fail(StaffErrors.STAFF_ROLE_CHANGE_NOT_PENDING, 'the role change is not waiting for a decision');
    const change = view(row);
    // An approval names what it grants; a refusal of an assignment names the role (which may be gone).
    const fields = contentFields(row.role, change.definition ?? (outcome === 'applied' ? await store.get(row.role) : undefined), row.kind === 'define');
    await db.transaction().execute(async (tx) => {
      if (outcome === 'applied') {
        if (row.kind === 'define') {
          const current = await store.find(row.role, tx);
          if (contentJson(current) !== row.base) fail(StaffErrors.STAFF_ROLE_CHANGE_STALE, 'the role changed since the request; ask again');
          await saveRole(tx, actor, { name: row.role, ...change.definition!, builtIn: false });
        } else {
          const member = await tx.selectFrom('staff_members').select('role').where('id', '=', row.member_id!).executeTakeFirst();
          if (member === undefined || member.role !== row.base) fail(StaffErrors.STAFF_ROLE_CHANGE_STALE, "the member's role changed since the request; ask again");
          await setRole(tx, actor, row.member_id!, await store.get(row.role));
        }
      }
      const result = await tx
        .updateTable('staff_role_changes')
        .set({ status: outcome, decided_by: actor, decided_at: now().toISOString() })
        .where('id', '=', id)
        .where('status', '=', 'pending')
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) fail(StaffErrors.STAFF_ROLE_CHANGE_NOT_PENDING, 'the role change is not waiting for a decision');
      await audit.appendInTx(tx, {
        actor,
        action: outcome === 'applied' ? 'staff.role_change.approve' : 'staff.role_change.deny',
        subjectId: row.member_id,
        collection: 'staff_role_changes',
        recordId: id,
        fields,
        outcome: 'success',
      });
    });
    return view(await load(id));
  }

  return {
    list: () => store.list(),
    get: (name) => store.get(name),

    async define(op, input) {
      await directory.authorize(op, 'roles.manage');
      const next = store.parse(input);
      const outcome: RoleOutcome<RoleDef | undefined> = await db.transaction().execute(async (tx) => {
        const current = await store.find(next.name, tx);
        if (op.kind === 'cli' || !grants(next, current)) {
          await saveRole(tx, operatorRef(op), next);
          return { result: next, pending: undefined };
        }
        // What the request takes away (and its description) applies now; what it adds waits.
        let base = current;
        if (current !== undefined) {
          const narrowed: RoleDef = {
            ...current,
            description: next.description,
            purposes: current.purposes.filter((p) => next.purposes.includes(p)),
            permissions: current.permissions.filter((p) => next.permissions.includes(p)),
          };
          if (JSON.stringify(narrowed) !== JSON.stringify(current)) await saveRole(tx, operatorRef(op), narrowed);
          base = narrowed;
        }
        const pending = await request(
          tx,
          op,
          {
            kind: 'define',
            role: next.name,
            member_id: null,
            description: next.description,
            purposes: JSON.stringify(next.purposes),
            permissions: JSON.stringify(next.permissions),
            base: contentJson(base),
          },
          contentFields(next.name, next, true),
        );
        return { result: base, pending };
      });
      if (outcome.pending !== undefined) await announce(outcome.pending);
      return outcome;
    },

    async remove(op, name) {
      await directory.authorize(op, 'roles.manage');
      await db.transaction().execute(async (tx) => {
        await store.delete(tx, name);
        await audit.appendInTx(tx, { actor: operatorRef(op), action: 'staff.role.remove', collection: 'staff_roles', recordId: name, fields: [`role.${name}`], outcome: 'success' });
      });
    },

    async assign(op, memberId, roleName) {
      const actor = await directory.authorize(op, 'staff.manage');
      if (actor?.id === memberId) fail(StaffErrors.STAFF_SELF_CHANGE, 'staff members cannot suspend themselves or change their own role');
      const role = await store.get(roleName);
      const member = await directory.member(memberId);
      if (member.role === role.name) return { result: member, pending: undefined };
      if (op.kind === 'cli' || !grants(role, member)) {
        await db.transaction().execute((tx) => setRole(tx, operatorRef(op), member.id, role));
        return { result: await directory.member(member.id), pending: undefined };
      }
      const pending = await db.transaction().execute((tx) =>
        request(tx, op, { kind: 'assign', role: role.name, member_id: member.id, description: null, purposes: null, permissions: null, base: member.role }, contentFields(role.name, role)),
      );
      await announce(pending);
      return { result: member, pending };
    },

    async changes(op, filter = {}) {
      const member = await directory.authorize(op, null);
      if (member !== undefined && !member.permissions.includes('roles.manage') && !member.permissions.includes('staff.manage'))
        fail(StaffErrors.STAFF_PERMISSION_DENIED, 'this action needs the roles.manage or staff.manage permission', { permission: 'roles.manage' });
      const rows = await db.selectFrom('staff_role_changes').selectAll().orderBy('requested_at', 'desc').orderBy('id', 'desc').limit(500).execute();
      const views = rows.map(view);
      return filter.status === undefined ? views : views.filter((c) => c.status === filter.status);
    },

    approve: (op, id) => decide(op, id, 'applied'),
    deny: (op, id) => decide(op, id, 'denied'),
  };
}
