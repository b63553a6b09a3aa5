import type { Kysely, Transaction } from 'kysely';
import { z } from 'zod';
import type { Clock } from '../../kernel/clock.ts';
import { fail } from '../../kernel/errors.ts';
import type { Database } from '../../store/schema.ts';
import { StaffErrors } from './errors.ts';

/**
 * Roles map staff to the purposes they may state when reading the vault and to the staff actions
 * they may take. Least privilege (PCI DSS 4.0.1 7.2.1, 7.2.2; GDPR Art. 25(2)): each built-in role
 * gets the purposes its job needs and nothing more, and `admin` — who manages people, roles and
 * training — gets no data purpose at all, so that running the staff directory never implies
 * reading customers. Wider access to one customer goes through a just-in-time elevation. Changing
 * roles is governed by role-service.ts (audited; grants need a second admin).
 */
export const PERMISSIONS = [
  /** Invite, suspend, reactivate staff and change their roles. */
  'staff.manage',
  /** Define and remove custom roles. */
  'roles.manage',
  /** Define courses, record completions, see who is blocked by training. */
  'training.manage',
  /** Approve or deny other members' elevation requests. */
  'elevation.approve',
  /** Read staff threat reports (phishing, suspicious activity, lost devices). */
  'reports.read',
  /** Read the audit log beyond one customer's access log (incident work). */
  'audit.read',
  /** Run the incident and breach register. */
  'incidents.manage',
  /** Work data-subject requests (access, erasure, rectification, restriction, objection). */
  'rights.manage',
  /** Keep the processor registry; read the record of processing and the data map. */
  'privacy.manage',
  /** See a card's full PAN (card vault reveal, with a reason and a fresh step-up); no built-in role holds it. */
  'cards.reveal',
] as const;
export type Permission = (typeof PERMISSIONS)[number];

export interface RoleDef {
  readonly name: string;
  readonly description: string;
  readonly purposes: readonly string[];
  readonly permissions: readonly Permission[];
  readonly builtIn: boolean;
}

const builtIn = (name: string, description: string, purposes: string[], permissions: Permission[]): RoleDef =>
  Object.freeze({ name, description, purposes: Object.freeze(purposes), permissions: Object.freeze(permissions), builtIn: true });

export const DEFAULT_ROLES: ReadonlyMap<string, RoleDef> = new Map(
  [
    builtIn('support_agent', 'Customer service: sees what the support purpose releases (contact data masked).', ['support'], []),
    builtIn('fulfilment', 'Warehouse and shipping: names, addresses and orders for delivery.', ['fulfilment'], []),
    builtIn(
      'privacy_officer',
      "Data-subject requests and privacy questions; approves other members' elevations.",
      ['account', 'support', 'legal_obligation'],
      ['rights.manage', 'elevation.approve', 'audit.read', 'privacy.manage'],
    ),
    builtIn(
      'security_officer',
      'Fraud prevention, audit and incidents; reads staff threat reports.',
      ['fraud_prevention'],
      ['audit.read', 'incidents.manage', 'reports.read'],
    ),
    builtIn(
      'admin',
      'Manages staff, roles and training and approves elevations; no customer data purpose (least privilege).',
      [],
      ['staff.manage', 'roles.manage', 'training.manage', 'elevation.approve'],
    ),
    builtIn('unassigned', "No purpose and no permission: a member whose role waits for a second admin's approval.", [], []),
  ].map((r) => [r.name, r]),
);

export const ROLE_NAME = /^[a-z][a-z0-9_]{1,31}$/;

export const RoleInputSchema = z.object({
  name: z.string().regex(ROLE_NAME),
  description: z.string().trim().min(1).max(200).default('Custom role.'),
  purposes: z.array(z.string().regex(/^[a-z][a-z0-9_.-]{0,63}$/)).max(32),
  permissions: z.array(z.enum(PERMISSIONS)).max(PERMISSIONS.length),
});
export type RoleInput = z.input<typeof RoleInputSchema>;

/** The stored side of roles: reading them, checking a definition, writing it inside a caller's transaction. */
export interface RoleStore {
  /** Built-in and custom roles, built-in first. */
  list(): Promise<RoleDef[]>;
  /** The role, or STAFF_ROLE_UNKNOWN. */
  get(name: string): Promise<RoleDef>;
  /** The custom role, or undefined (built-in names included). */
  find(name: string, tx?: Transaction<Database>): Promise<RoleDef | undefined>;
  /** A checked, normalised custom role (sorted, no repeats), or STAFF_ROLE_INVALID; built-in names are refused. */
  parse(input: RoleInput): RoleDef;
  /** Adds or replaces a custom role. */
  save(tx: Transaction<Database>, role: RoleDef): Promise<void>;
  /** Removes a custom role nobody holds: STAFF_ROLE_IN_USE, STAFF_ROLE_UNKNOWN. */
  delete(tx: Transaction<Database>, name: string): Promise<void>;
}

/** Roles: the built-ins from code, the shop's own from `staff_roles`. */
export function createRoleStore(deps: { db: Kysely<Database>; clock: Clock; knownPurposes: { has(name: string): boolean } }): RoleStore {
  const { db, clock, knownPurposes } = deps;
  const toDef = (r: Database['staff_roles']): RoleDef => ({
    name: r.name,
    description: r.description,
    purposes: JSON.parse(r.purposes) as string[],
    permissions: JSON.parse(r.permissions) as Permission[],
    builtIn: false,
  });

  const store: RoleStore = {
    async list() {
      const rows = await db.selectFrom('staff_roles').selectAll().orderBy('name').execute();
      return [...DEFAULT_ROLES.values(), ...rows.map(toDef)];
    },

    async get(name) {
      const fixed = DEFAULT_ROLES.get(name);
      if (fixed !== undefined) return fixed;
      const role = await store.find(name);
      if (role === undefined) fail(StaffErrors.STAFF_ROLE_UNKNOWN, 'no role with that name');
      return role;
    },

    async find(name, tx) {
      if (DEFAULT_ROLES.has(name)) return undefined;
      const row = await (tx ?? db).selectFrom('staff_roles').selectAll().where('name', '=', name).executeTakeFirst();
      return row === undefined ? undefined : toDef(row);
    },

    parse(input) {
      const parsed = RoleInputSchema.safeParse(input);
      if (!parsed.success) fail(StaffErrors.STAFF_ROLE_INVALID, `invalid role: ${parsed.error.issues[0]?.path.join('.') || 'role'}`);
      const role = parsed.data;
      if (DEFAULT_ROLES.has(role.name)) fail(StaffErrors.STAFF_ROLE_INVALID, 'built-in roles cannot be redefined');
      const undeclared = role.purposes.filter((p) => !knownPurposes.has(p));
      if (undeclared.length > 0) fail(StaffErrors.STAFF_ROLE_INVALID, `purposes not declared in the inventory: ${undeclared.join(', ')}`);
      return {
        name: role.name,
        description: role.description,
        purposes: [...new Set(role.purposes)].sort(),
        permissions: [...new Set(role.permissions)].sort(),
        builtIn: false,
      };
    },

    async save(tx, role) {
      const at = clock.now().toISOString();
      const purposes = JSON.stringify(role.purposes);
      const permissions = JSON.stringify(role.permissions);
      await tx
        .insertInto('staff_roles')
        .values({ name: role.name, description: role.description, purposes, permissions, created_at: at, updated_at: at })
        .onConflict((oc) => oc.column('name').doUpdateSet({ description: role.description, purposes, permissions, updated_at: at }))
        .execute();
    },

    async delete(tx, name) {
      if (DEFAULT_ROLES.has(name)) fail(StaffErrors.STAFF_ROLE_INVALID, 'built-in roles cannot be removed');
      const held = await tx.selectFrom('staff_members').select('id').where('role', '=', name).limit(1).executeTakeFirst();
      if (held !== undefined) fail(StaffErrors.STAFF_ROLE_IN_USE, 'the role is still held by staff members');
      const result = await tx.deleteFrom('staff_roles').where('name', '=', name).executeTakeFirst();
      if (Number(result.numDeletedRows) === 0) fail(StaffErrors.STAFF_ROLE_UNKNOWN, 'no role with that name');
    },
  };
  return store;
}
