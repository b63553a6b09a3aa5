import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runStaffCommand } from '../../cli/commands/staff.ts';
import { CLI_OPERATOR, type Operator } from './ports.ts';
import { codeOf, staffFixture, type StaffFixture } from './test-support/fixture.ts';

/**
 * Roles under dual control: defining or changing a role is audited with its content; what grants
 * (a new or widened role, a role given to a member) waits for a second admin; what narrows applies
 * at once, also to live sessions; the CLI is exempt but audited.
 */
let f: StaffFixture;
beforeAll(async () => {
  f = await staffFixture();
});
afterAll(() => f.close());

const as = (m: { id: string }): Operator => ({ kind: 'staff', memberId: m.id, mfaVerifiedAt: null });
let n = 0;
const roleName = () => `desk_${(n += 1)}`;

/** The audit entries about a record (role name or change id), oldest first. */
async function entries(recordId: string) {
  const rows = await f.db.selectFrom('audit_log').select(['actor', 'action', 'fields', 'subject_id']).where('record_id', '=', recordId).orderBy('id').execute();
  return rows.map((r) => ({ actor: r.actor, action: r.action, subject: r.subject_id, fields: JSON.parse(r.fields) as string[] }));
}

describe('staff roles under dual control', () => {
  it('an admin cannot widen a role alone (self-granted purposes wait for a second admin)', async () => {
    const name = roleName();
    await f.staff.roles.define(CLI_OPERATOR, { name, purposes: ['fulfilment'], permissions: [] });
    const a = await f.member('admin');
    const b = await f.member('admin');
    const desk = await f.member(name);
    const customer = await f.customer();

    const asked = await f.staff.roles.define(as(a), { name, purposes: ['fulfilment', 'account'], permissions: ['staff.manage'] });
    expect(asked.pending).toMatchObject({ kind: 'define', role: name, status: 'pending', requestedBy: `staff:${a.id}` });
    const told = f.mails.filter((m) => m.to === b.email && m.text.includes(asked.pending!.id));
    expect(told).toHaveLength(1);
    expect(told[0]!.subject).toBe('Custos: a role change waits for a second admin');
    expect((await f.staff.roles.get(name)).purposes).toEqual(['fulfilment']);
    expect(await codeOf(f.read(desk.id, 'account', customer))).toBe('POLICY_PURPOSE_NOT_ALLOWED');

    expect(await codeOf(f.staff.roles.approve(as(a), asked.pending!.id))).toBe('STAFF_ROLE_CHANGE_SELF_APPROVAL');
    // Someone the change grants to cannot approve it either, nor a member without roles.manage.
    expect(await codeOf(f.staff.roles.approve(as(desk), asked.pending!.id))).toBe('STAFF_PERMISSION_DENIED');
    const approved = await f.staff.roles.approve(as(b), asked.pending!.id);
    expect(approved).toMatchObject({ status: 'applied', decidedBy: `staff:${b.id}` });
    expect(await f.staff.roles.get(name)).toMatchObject({ purposes: ['account', 'fulfilment'], permissions: ['staff.manage'] });
    expect((await f.read(desk.id, 'account', customer)).email).toBe('ada@example.org');
    expect(await codeOf(f.staff.roles.approve(as(b), asked.pending!.id))).toBe('STAFF_ROLE_CHANGE_NOT_PENDING');

    // Each step is audited with the content: who asked, who approved, what the role now holds.
    const content = [`role.${name}`, 'description', 'purposes.account', 'purposes.fulfilment', 'permissions.staff.manage'];
    expect(await entries(asked.pending!.id)).toEqual([
      { actor: `staff:${a.id}`, action: 'staff.role_change.request', subject: null, fields: content },
      { actor: `staff:${b.id}`, action: 'staff.role_change.approve', subject: null, fields: content },
    ]);
    expect((await entries(name)).at(-1)).toEqual({ actor: `staff:${b.id}`, action: 'staff.role.define', subject: null, fields: content });
  });

  it('an admin cannot create a new data role alone, nor invite a member straight into one', async () => {
    const a = await f.member('admin');
    const name = roleName();
    const asked = await f.staff.roles.define(as(a), { name, purposes: ['support'], permissions: [] });
    expect(asked.result).toBeUndefined();
    expect(await codeOf(f.staff.roles.get(name))).toBe('STAFF_ROLE_UNKNOWN');

    const created = await f.staff.members.create(as(a), { email: 'new.officer@shop.example', role: 'privacy_officer' });
    expect(created.member.role).toBe('unassigned');
    expect(created.member.purposes).toEqual([]);
    expect(created.pending).toMatchObject({ kind: 'assign', role: 'privacy_officer', memberId: created.member.id, status: 'pending' });
    expect(await codeOf(f.staff.roles.approve(as(a), created.pending!.id))).toBe('STAFF_ROLE_CHANGE_SELF_APPROVAL');
    // A role that grants nothing is given at once.
    const plain = await f.staff.members.create(as(a), { email: 'new.nobody@shop.example', role: 'unassigned' });
    expect(plain.pending).toBeUndefined();
  });

  it('an admin cannot give a member a data role alone, and the member cannot approve their own grant', async () => {
    const a = await f.member('admin');
    const b = await f.member('admin');
    const c = await f.member('admin');
    const customer = await f.customer();
    // b asks nothing; a asks to make b a privacy officer (rights.manage, audit.read, account data).
    const asked = await f.staff.members.changeRole(as(a), b.id, 'privacy_officer');
    expect(asked.pending).toMatchObject({ kind: 'assign', memberId: b.id, role: 'privacy_officer' });
    expect((await f.staff.directory.member(b.id)).role).toBe('admin');
    expect(await codeOf(f.staff.roles.approve(as(a), asked.pending!.id))).toBe('STAFF_ROLE_CHANGE_SELF_APPROVAL');
    expect(await codeOf(f.staff.roles.approve(as(b), asked.pending!.id))).toBe('STAFF_ROLE_CHANGE_SELF_APPROVAL');
    await f.staff.roles.approve(as(c), asked.pending!.id);
    expect((await f.staff.directory.member(b.id)).role).toBe('privacy_officer');
    expect((await f.read(b.id, 'account', customer)).id).toBe(customer);
    const content = [
      'role.privacy_officer',
      'purposes.account',
      'purposes.support',
      'purposes.legal_obligation',
      'permissions.rights.manage',
      'permissions.elevation.approve',
      'permissions.audit.read',
      'permissions.privacy.manage',
    ];
    expect(await entries(asked.pending!.id)).toEqual([
      { actor: `staff:${a.id}`, action: 'staff.role_change.request', subject: b.id, fields: content },
      { actor: `staff:${c.id}`, action: 'staff.role_change.approve', subject: b.id, fields: content },
    ]);
    expect((await entries(b.id)).at(-1)).toEqual({ actor: `staff:${c.id}`, action: 'staff.member.role', subject: b.id, fields: ['role', ...content] });
  });

  it('a narrowed role cannot be used through an old session: removal applies at once, without approval', async () => {
    const name = roleName();
    await f.staff.roles.define(CLI_OPERATOR, { name, purposes: ['fulfilment', 'support'], permissions: ['training.manage'] });
    const a = await f.member('admin');
    const desk = await f.member(name);
    const other = await f.member('support_agent');
    const customer = await f.customer();
    // The member's actor is built for each request; here one is built before the change, as a live session holds it.
    const before = await f.staff.actorFor(desk.id);
    expect(before.purposes).toEqual(['fulfilment', 'support']);
    expect((await f.read(desk.id, 'support', customer)).id).toBe(customer);

    const narrowed = await f.staff.roles.define(as(a), { name, purposes: ['fulfilment'], permissions: [] });
    expect(narrowed.pending).toBeUndefined();
    await expect(f.vault.readCustomer({ actor: before, purpose: 'support', requestId: 'old-session' }, customer)).rejects.toMatchObject({ code: 'STAFF_ELEVATION_REQUIRED' });
    expect(await codeOf(f.read(desk.id, 'support', customer))).toBe('POLICY_PURPOSE_NOT_ALLOWED');
    expect(await codeOf(f.staff.training.status(as(desk), other.id))).toBe('STAFF_PERMISSION_DENIED');
    expect((await entries(name)).at(-1)).toEqual({ actor: `staff:${a.id}`, action: 'staff.role.define', subject: null, fields: [`role.${name}`, 'description', 'purposes.fulfilment'] });
  });

  it('a change that narrows and widens at once applies the narrowing now and holds the rest for approval', async () => {
    const name = roleName();
    await f.staff.roles.define(CLI_OPERATOR, { name, purposes: ['fulfilment', 'support'], permissions: [] });
    const a = await f.member('admin');
    const b = await f.member('admin');
    const asked = await f.staff.roles.define(as(a), { name, purposes: ['fulfilment', 'fraud_prevention'], permissions: [] });
    expect(asked.result?.purposes).toEqual(['fulfilment']);
    expect((await f.staff.roles.get(name)).purposes).toEqual(['fulfilment']);
    await f.staff.roles.approve(as(b), asked.pending!.id);
    expect((await f.staff.roles.get(name)).purposes).toEqual(['fraud_prevention', 'fulfilment']);
  });

  it('a stale or lapsed request cannot be approved later (approval applies only what was reviewed, within 24 hours)', async () => {
    const name = roleName();
    await f.staff.roles.define(CLI_OPERATOR, { name, purposes: ['fulfilment'], permissions: [] });
    const a = await f.member('admin');
    const b = await f.member('admin');
    const first = await f.staff.roles.define(as(a), { name, purposes: ['fulfilment', 'support'], permissions: [] });
    await f.staff.roles.define(CLI_OPERATOR, { name, purposes: ['fulfilment', 'account'], permissions: [] });
    expect(await codeOf(f.staff.roles.approve(as(b), first.pending!.id))).toBe('STAFF_ROLE_CHANGE_STALE');
    expect((await f.staff.roles.get(name)).purposes).toEqual(['account', 'fulfilment']);

    const late = await f.staff.roles.define(as(a), { name, purposes: ['account', 'fulfilment', 'support'], permissions: [] });
    f.clock.advance(24 * 3_600_000 + 1000);
    expect(await codeOf(f.staff.roles.approve(as(b), late.pending!.id))).toBe('STAFF_ROLE_CHANGE_NOT_PENDING');
    expect((await f.staff.roles.changes(as(b))).find((c) => c.id === late.pending!.id)?.status).toBe('expired');
    const denied = await f.staff.roles.define(as(a), { name, purposes: ['account', 'fulfilment', 'support'], permissions: [] });
    expect((await f.staff.roles.deny(as(a), denied.pending!.id)).status).toBe('denied');
    expect((await f.staff.roles.get(name)).purposes).toEqual(['account', 'fulfilment']);
  });

  it('the custos CLI grants at once, and is audited as cli with the content', async () => {
    const name = roleName();
    const out: string[] = [];
    const io = { out: (l: string) => void out.push(l), err: () => undefined, progress: () => undefined, done: () => undefined };
    expect(await runStaffCommand(f.staff, ['roles', 'define', '--role', name, '--purposes', 'support,account', '--permissions', 'audit.read'], io)).toBe(0);
    expect(out).toEqual([`${name}\taccount,support\taudit.read\tcustom`]);
    expect(await entries(name)).toEqual([
      { actor: 'cli', action: 'staff.role.define', subject: null, fields: [`role.${name}`, 'description', 'purposes.account', 'purposes.support', 'permissions.audit.read'] },
    ]);
    expect(await runStaffCommand(f.staff, ['roles', 'remove', '--role', name], io)).toBe(0);
    expect((await entries(name)).at(-1)).toEqual({ actor: 'cli', action: 'staff.role.remove', subject: null, fields: [`role.${name}`] });

    // A request made in the console can be decided by the operator.
    const a = await f.member('admin');
    const asked = await f.staff.roles.define(as(a), { name, purposes: ['support'], permissions: [] });
    out.length = 0;
    expect(await runStaffCommand(f.staff, ['role-changes'], io)).toBe(0);
    expect(out).toContain(`${asked.pending!.id}\tdefine\t${name}\t-\t${name}\tsupport\t-\tcustom\tpending\tstaff:${a.id}`);
    out.length = 0;
    expect(await runStaffCommand(f.staff, ['role-changes', 'approve', '--id', asked.pending!.id], io)).toBe(0);
    expect(out).toEqual([`${asked.pending!.id}\tdefine\t${name}\t-\tapplied`]);
    expect((await f.staff.roles.get(name)).purposes).toEqual(['support']);
  });
});
