import { CLI_OPERATOR } from '../../modules/staff/ports.ts';
import type { RoleDef, RoleInput } from '../../modules/staff/roles.ts';
import type { StaffServices } from '../../modules/staff/services.ts';
import type { TrainingStatus } from '../../modules/staff/training-service.ts';
import type { Io } from '../io.ts';
import { UsageError } from '../io.ts';
import type { CommandRun } from '../main.ts';
import { parse } from '../main.ts';

/**
 * `custos staff …`: the shop's employees, their roles and training. The operator of the CLI holds
 * the database and the keys, so the services do not check staff permissions for it, and role
 * changes that grant apply at once instead of waiting for a second admin; every change is still
 * audited with actor 'cli'. Invitation links go out by mail; without a mailer the link is
 * printed once on standard output for the operator to hand over.
 */
export const STAFF_USAGE = `  staff create --email E --role R               invite a staff member (link by mail; printed once without a mailer)
  staff invite --email E                        a new invitation link for a member who has not accepted yet
  staff list [--json]                           staff members, roles, status, second factor
  staff role --email E --role R                 change a member's role
  staff suspend|reactivate --email E            stop or restore a member's access at once
  staff roles [--json]                          roles with their purposes and permissions
  staff roles define --role R --purposes a,b --permissions p,q [--description D]
  staff roles remove --role R                   remove a custom role nobody holds
  staff role-changes [--json]                   role changes waiting for a second admin, and decided ones
  staff role-changes approve|deny --id rch_…    decide a role change asked for in the console
  staff training course add --course C --required-for all|r1,r2 [--title T]
  staff training course remove|list [--course C]
  staff training complete --email E --course C --date YYYY-MM-DD
  staff training status [--email E] [--json]    training per member; blocked members are refused personal data`;

export const staffCommand: CommandRun = async (runtime, args, io) => runStaffCommand(runtime.staff, args, io);

const need = (value: string | boolean | undefined, flag: string): string => {
  if (typeof value !== 'string' || value === '') throw new UsageError(`needs ${flag}`);
  return value;
};

const roleLine = (r: RoleDef) => [r.name, r.purposes.join(',') || '-', r.permissions.join(',') || '-', r.builtIn ? 'built-in' : 'custom'].join('\t');

function statusLines(s: TrainingStatus): string {
  const courses = s.courses.map((c) => `${c.course}:${c.state}${c.expiresOn === null ? '' : `(until ${c.expiresOn})`}`).join(' ');
  return [s.memberId, s.role, s.status, s.blocked ? 'BLOCKED' : 'ok', courses || '-'].join('\t');
}

/** Runs one `staff` subcommand against the given services; the exit code. */
export async function runStaffCommand(staff: StaffServices, args: string[], io: Io): Promise<number> {
  const [sub, ...rest] = args;
  const byEmail = (email: string) => staff.members.findByEmail(CLI_OPERATOR, email);

  if (sub === 'create' || sub === 'invite') {
    const { values } = parse(rest, { email: { type: 'string' }, role: { type: 'string' } });
    const email = need(values.email, '--email E');
    const result =
      sub === 'create'
        ? await staff.members.create(CLI_OPERATOR, { email, role: need(values.role, '--role R') })
        : { member: await byEmail(email), invitation: undefined };
    const invitation = result.invitation ?? (await staff.members.invite(CLI_OPERATOR, result.member.id));
    if (invitation.mailed) io.err(`${sub === 'create' ? 'created' : 'invited'} ${result.member.id} (${result.member.role}); invitation mailed, valid until ${invitation.expiresAt}`);
    else {
      io.out(invitation.link.reveal());
      io.err(`${result.member.id} (${result.member.role}): no mailer configured; hand over the link above (shown only now, single use, valid until ${invitation.expiresAt})`);
    }
    return 0;
  }
  if (sub === 'list') {
    const { values } = parse(rest, { json: { type: 'boolean' } });
    const list = await staff.members.list(CLI_OPERATOR);
    if (values.json === true) io.out(JSON.stringify(list, null, 2));
    else for (const m of list) io.out([m.id, m.email, m.role, m.status, m.mfaEnrolled ? 'mfa' : 'NO-MFA', m.createdAt].join('\t'));
    return 0;
  }
  if (sub === 'role' || sub === 'suspend' || sub === 'reactivate') {
    const { values } = parse(rest, { email: { type: 'string' }, role: { type: 'string' } });
    const member = await byEmail(need(values.email, '--email E'));
    const done =
      sub === 'role'
        ? (await staff.members.changeRole(CLI_OPERATOR, member.id, need(values.role, '--role R'))).result
        : sub === 'suspend'
          ? await staff.members.suspend(CLI_OPERATOR, member.id)
          : await staff.members.reactivate(CLI_OPERATOR, member.id);
    io.out([done.id, done.role, done.status].join('\t'));
    return 0;
  }
  if (sub === 'roles' && (rest[0] === 'define' || rest[0] === 'remove')) {
    const { values } = parse(rest.slice(1), { role: { type: 'string' }, purposes: { type: 'string' }, permissions: { type: 'string' }, description: { type: 'string' } });
    const name = need(values.role, '--role R');
    if (rest[0] === 'remove') {
      await staff.roles.remove(CLI_OPERATOR, name);
      return 0;
    }
    const list = (v: string | boolean | undefined) => (typeof v === 'string' ? v.split(',').map((x) => x.trim()).filter((x) => x !== '') : []);
    const done = await staff.roles.define(CLI_OPERATOR, {
      name,
      purposes: list(values.purposes),
      permissions: list(values.permissions) as RoleInput['permissions'],
      ...(typeof values.description === 'string' ? { description: values.description } : {}),
    });
    if (done.result !== undefined) io.out(roleLine(done.result));
    return 0;
  }
  if (sub === 'role-changes') {
    const [action, ...more] = rest;
    if (action === 'approve' || action === 'deny') {
      const { values } = parse(more, { id: { type: 'string' } });
      const change = await staff.roles[action](CLI_OPERATOR, need(values.id, '--id rch_…'));
      io.out([change.id, change.kind, change.role, change.memberId ?? '-', change.status].join('\t'));
      return 0;
    }
    const { values } = parse(rest, { json: { type: 'boolean' } });
    const changes = await staff.roles.changes(CLI_OPERATOR);
    if (values.json === true) io.out(JSON.stringify(changes, null, 2));
    else
      for (const c of changes)
        io.out([c.id, c.kind, c.role, c.memberId ?? '-', c.definition === null ? '-' : roleLine({ name: c.role, ...c.definition, builtIn: false }), c.status, c.requestedBy].join('\t'));
    return 0;
  }
  if (sub === 'roles') {
    const { values } = parse(rest, { json: { type: 'boolean' } });
    const roles = await staff.roles.list();
    if (values.json === true) io.out(JSON.stringify(roles, null, 2));
    else for (const r of roles) io.out(roleLine(r));
    return 0;
  }
  if (sub === 'training') return training(staff, rest, io, byEmail);
  throw new UsageError(`staff create|invite|list|role|suspend|reactivate|roles|role-changes|training\n${STAFF_USAGE}`);
}

async function training(staff: StaffServices, args: string[], io: Io, byEmail: (email: string) => Promise<{ id: string }>): Promise<number> {
  const [sub, ...rest] = args;
  if (sub === 'course') {
    const [action, ...more] = rest;
    const { values } = parse(more, { course: { type: 'string' }, 'required-for': { type: 'string' }, title: { type: 'string' } });
    if (action === 'add') {
      const raw = need(values['required-for'], '--required-for all|role1,role2');
      const requiredFor = raw === 'all' ? ('all' as const) : raw.split(',').map((r) => r.trim()).filter((r) => r !== '');
      const course = await staff.training.defineCourse(CLI_OPERATOR, {
        name: need(values.course, '--course C'),
        requiredFor,
        ...(typeof values.title === 'string' ? { title: values.title } : {}),
      });
      io.out([course.name, course.requiredFor === 'all' ? 'all' : course.requiredFor.join(','), course.title].join('\t'));
      return 0;
    }
    if (action === 'remove') {
      await staff.training.removeCourse(CLI_OPERATOR, need(values.course, '--course C'));
      return 0;
    }
    if (action === 'list') {
      for (const c of await staff.training.listCourses()) io.out([c.name, c.requiredFor === 'all' ? 'all' : c.requiredFor.join(',') || '-', c.title].join('\t'));
      return 0;
    }
    throw new UsageError('staff training course add|remove|list');
  }
  if (sub === 'complete') {
    const { values } = parse(rest, { email: { type: 'string' }, course: { type: 'string' }, date: { type: 'string' } });
    const course = need(values.course, '--course C');
    const completedOn = need(values.date, '--date YYYY-MM-DD');
    const member = await byEmail(need(values.email, '--email E'));
    const done = await staff.training.recordCompletion(CLI_OPERATOR, { memberId: member.id, course, completedOn });
    io.out(`${done.id}\tvalid until ${done.expiresOn}`);
    return 0;
  }
  if (sub === 'status') {
    const { values } = parse(rest, { email: { type: 'string' }, json: { type: 'boolean' } });
    const list =
      typeof values.email === 'string'
        ? [await staff.training.status(CLI_OPERATOR, (await byEmail(values.email)).id)]
        : await staff.training.statusAll(CLI_OPERATOR);
    if (values.json === true) io.out(JSON.stringify(list, null, 2));
    else for (const s of list) io.out(statusLines(s));
    const blocked = list.filter((s) => s.blocked && s.status !== 'suspended').length;
    if (blocked > 0) io.err(`${blocked} member(s) blocked by missing or expired training: no access to personal data until it is recorded`);
    return 0;
  }
  throw new UsageError('staff training course|complete|status');
}
