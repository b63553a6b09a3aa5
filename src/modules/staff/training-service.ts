import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { Clock } from '../../kernel/clock.ts';
import { fail } from '../../kernel/errors.ts';
import { newId } from '../../kernel/ids.ts';
import type { Database } from '../../store/schema.ts';
import type { AuditLog } from '../audit/service.ts';
import type { Directory, StaffMember } from './directory.ts';
import { StaffErrors } from './errors.ts';
import type { Notifier } from './notify.ts';
import { operatorRef, type Operator } from './ports.ts';
import type { RoleStore } from './roles.ts';
import { expiresOn, parseDate, utcToday } from './training-dates.ts';

/**
 * Security and privacy training of staff (PCI DSS 4.0.1 12.6.1–12.6.3: awareness training on hire
 * and at least once every 12 months; GDPR Art. 39(1)(b), 32(4)). The shop declares courses and
 * which roles need them, and records each completion with its date; a completion counts for
 * `validityMonths` (default 12; the owner wires CUSTOS_TRAINING_VALIDITY_MONTHS). A member whose
 * required training is missing or expired reads no personal data (the guard), and the people who
 * manage training are told: a list of blocked members, an audit entry per refused read, a mail.
 */
export const DEFAULT_TRAINING_VALIDITY_MONTHS = 12;
/** Blocked members are mailed about at most once a day each. */
const ALERT_EVERY_MS = 24 * 3_600_000;

export interface CourseDef {
  readonly name: string;
  readonly title: string;
  /** Role names, or 'all'. */
  readonly requiredFor: readonly string[] | 'all';
  readonly createdAt: string;
  readonly updatedAt: string;
}

export interface CourseStatus {
  readonly course: string;
  readonly required: boolean;
  readonly completedOn: string | null;
  /** First day the latest completion no longer counts. */
  readonly expiresOn: string | null;
  readonly state: 'valid' | 'expired' | 'missing';
}

export interface TrainingStatus {
  readonly memberId: string;
  readonly role: string;
  readonly status: StaffMember['status'];
  /** True when a required course is missing or expired: no access to personal data. */
  readonly blocked: boolean;
  readonly courses: readonly CourseStatus[];
}

export const CourseInputSchema = z.object({
  name: z.string().regex(/^[a-z][a-z0-9_]{1,63}$/),
  title: z.string().trim().min(1).max(200).optional(),
  requiredFor: z.union([z.literal('all'), z.array(z.string().regex(/^[a-z][a-z0-9_]{1,31}$/)).max(64)]),
});
export type CourseInput = z.input<typeof CourseInputSchema>;

export interface TrainingService {
  /** Adds a course or changes its title and the roles that need it. */
  defineCourse(op: Operator, input: CourseInput): Promise<CourseDef>;
  removeCourse(op: Operator, name: string): Promise<void>;
  listCourses(): Promise<CourseDef[]>;
  /** Records that a member completed a course on a date (not in the future); never by that member. */
  recordCompletion(op: Operator, input: { memberId: string; course: string; completedOn: string }): Promise<{ id: string; expiresOn: string }>;
  /** One member's training; members may see their own, others need training.manage. */
  status(op: Operator, memberId: string): Promise<TrainingStatus>;
  /** Every member's training (training.manage). */
  statusAll(op: Operator): Promise<TrainingStatus[]>;
  /** Active and invited members blocked by training: the admin-visible list (training.manage). */
  blocked(op: Operator): Promise<TrainingStatus[]>;
  /** Required courses the member lacks or has let expire, for the guard; empty when none. */
  missingFor(member: StaffMember): Promise<string[]>;
  /** After the guard refused a read: audit entry, and at most one mail a day to training managers. */
  noteRefusal(member: StaffMember, read: { purpose: string; subjectId: string }): Promise<void>;
}

export function createTrainingService(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: AuditLog;
  directory: Directory;
  roles: Pick<RoleStore, 'list'>;
  notifier: Notifier;
  validityMonths?: number;
}): TrainingService {
  const { db, clock, audit, directory, roles, notifier } = deps;
  const validity = deps.validityMonths ?? DEFAULT_TRAINING_VALIDITY_MONTHS;
  if (!Number.isInteger(validity) || validity < 1 || validity > 120) throw new Error('training validity must be 1–120 months');

  const toCourse = (r: Database['staff_courses']): CourseDef => {
    const list = JSON.parse(r.required_for) as string[];
    return { name: r.name, title: r.title, requiredFor: list.includes('*') ? 'all' : list, createdAt: r.created_at, updatedAt: r.updated_at };
  };
  const requires = (c: CourseDef, role: string) => c.requiredFor === 'all' || c.requiredFor.includes(role);

  async function statusOf(member: StaffMember, courses: readonly CourseDef[]): Promise<TrainingStatus> {
    const rows = await db
      .selectFrom('staff_training')
      .select(['course', 'completed_on'])
      .where('member_id', '=', member.id)
      .execute();
    const latest = new Map<string, string>();
    for (const r of rows) if ((latest.get(r.course) ?? '') < r.completed_on) latest.set(r.course, r.completed_on);
    const today = utcToday(clock.now());
    const out: CourseStatus[] = [];
    for (const c of courses) {
      const required = requires(c, member.role);
      const done = latest.get(c.name);
      if (!required && done === undefined) continue;
      const until = done === undefined ? null : expiresOn(done, validity);
      const state = until === null ? 'missing' : today < until ? 'valid' : 'expired';
      out.push({ course: c.name, required, completedOn: done ?? null, expiresOn: until, state });
    }
    return {
      memberId: member.id,
      role: member.role,
      status: member.status,
      blocked: out.some((c) => c.required && c.state !== 'valid'),
      courses: out,
    };
  }

  async function allMembers(): Promise<StaffMember[]> {
    const rows = await db.selectFrom('staff_members').selectAll().orderBy('id').execute();
    return Promise.all(rows.map((r) => directory.toMember(r)));
  }

  const service: TrainingService = {
    async defineCourse(op, input) {
      await directory.authorize(op, 'training.manage');
      const parsed = CourseInputSchema.safeParse(input);
      if (!parsed.success) fail(StaffErrors.STAFF_COURSE_INVALID, `invalid course: ${parsed.error.issues[0]?.path.join('.') || 'course'}`);
      const { name, requiredFor } = parsed.data;
      if (requiredFor !== 'all') {
        const known = new Set((await roles.list()).map((r) => r.name));
        const unknown = requiredFor.filter((r) => !known.has(r));
        if (unknown.length > 0) fail(StaffErrors.STAFF_COURSE_INVALID, `required_for names roles that do not exist: ${unknown.join(', ')}`);
      }
      const at = clock.now().toISOString();
      const title = parsed.data.title ?? name.replaceAll('_', ' ');
      const list = JSON.stringify(requiredFor === 'all' ? ['*'] : [...new Set(requiredFor)].sort());
      await db.transaction().execute(async (tx) => {
        await tx
          .insertInto('staff_courses')
          .values({ name, title, required_for: list, created_at: at, updated_at: at })
          .onConflict((oc) => oc.column('name').doUpdateSet({ title, required_for: list, updated_at: at }))
          .execute();
        await audit.appendInTx(tx, { actor: operatorRef(op), action: 'staff.course.define', collection: 'staff_courses', recordId: name, fields: ['required_for', 'title'], outcome: 'success' });
      });
      return toCourse((await db.selectFrom('staff_courses').selectAll().where('name', '=', name).executeTakeFirstOrThrow()));
    },

    async removeCourse(op, name) {
      await directory.authorize(op, 'training.manage');
      await db.transaction().execute(async (tx) => {
        const result = await tx.deleteFrom('staff_courses').where('name', '=', name).executeTakeFirst();
        if (Number(result.numDeletedRows) === 0) fail(StaffErrors.STAFF_COURSE_UNKNOWN, 'no course with that name');
        await audit.appendInTx(tx, { actor: operatorRef(op), action: 'staff.course.remove', collection: 'staff_courses', recordId: name, outcome: 'success' });
      });
    },

    async listCourses() {
      return (await db.selectFrom('staff_courses').selectAll().orderBy('name').execute()).map(toCourse);
    },

    async recordCompletion(op, input) {
      await directory.authorize(op, 'training.manage');
      // Separation of duties: a completion is attested by someone other than the trainee.
      if (op.kind === 'staff' && op.memberId === input.memberId)
        fail(StaffErrors.STAFF_TRAINING_SELF_CERTIFICATION, 'a completion must be recorded by someone other than the member who completed the course');
      const member = await directory.member(input.memberId);
      if (parseDate(input.completedOn) === undefined) fail(StaffErrors.STAFF_TRAINING_DATE_INVALID, 'completed_on must be a real date, YYYY-MM-DD');
      if (input.completedOn > utcToday(clock.now())) fail(StaffErrors.STAFF_TRAINING_DATE_INVALID, 'completed_on lies in the future');
      const course = await db.selectFrom('staff_courses').select('name').where('name', '=', input.course).executeTakeFirst();
      if (course === undefined) fail(StaffErrors.STAFF_COURSE_UNKNOWN, 'no course with that name');
      const now = clock.now();
      const id = newId('trn', now.getTime());
      await db.transaction().execute(async (tx) => {
        await tx
          .insertInto('staff_training')
          .values({ id, member_id: member.id, course: course.name, completed_on: input.completedOn, recorded_by: operatorRef(op), recorded_at: now.toISOString() })
          .execute();
        await audit.appendInTx(tx, {
          actor: operatorRef(op),
          action: 'staff.training.complete',
          subjectId: member.id,
          collection: 'staff_training',
          recordId: id,
          fields: ['completed_on', 'course'],
          outcome: 'success',
        });
      });
      return { id, expiresOn: expiresOn(input.completedOn, validity) };
    },

    async status(op, memberId) {
      if (op.kind === 'staff' && op.memberId === memberId) await directory.authorizeSelf(op);
      else await directory.authorize(op, 'training.manage');
      return statusOf(await directory.member(memberId), await service.listCourses());
    },

    async statusAll(op) {
      await directory.authorize(op, 'training.manage');
      const courses = await service.listCourses();
      return Promise.all((await allMembers()).map((m) => statusOf(m, courses)));
    },

    async blocked(op) {
      const all = await service.statusAll(op);
      return all.filter((s) => s.blocked && s.status !== 'suspended');
    },

    async missingFor(member) {
      const status = await statusOf(member, await service.listCourses());
      return status.courses.filter((c) => c.required && c.state !== 'valid').map((c) => c.course);
    },

    async noteRefusal(member, read) {
      await audit.append({
        actor: `staff:${member.id}`,
        action: 'staff.access.training_required',
        subjectId: read.subjectId,
        purpose: read.purpose,
        outcome: 'denied',
      });
      const now = clock.now();
      const claimed = await db
        .updateTable('staff_members')
        .set({ training_alerted_at: now.toISOString() })
        .where('id', '=', member.id)
        .where((eb) =>
          eb.or([eb('training_alerted_at', 'is', null), eb('training_alerted_at', '<', new Date(now.getTime() - ALERT_EVERY_MS).toISOString())]),
        )
        .executeTakeFirst();
      if (Number(claimed.numUpdatedRows) !== 1) return;
      await notifier.tell(
        'training.manage',
        'Custos: a staff member is blocked by missing training',
        `Staff member ${member.id} (role ${member.role}) was refused access to personal data because required training is missing or expired.\n` +
          'Record the completion with `custos staff training complete` or in the admin console; `custos staff training status` lists every blocked member.',
      );
    },
  };
  return service;
}
