import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../kernel/errors.ts';
import { CLI_OPERATOR } from './ports.ts';
import { codeOf, staffFixture, type StaffFixture } from './test-support/fixture.ts';
import { utcToday } from './training-dates.ts';

const DAY = 86_400_000;
let f: StaffFixture;
beforeAll(async () => {
  f = await staffFixture({ start: new Date('2025-01-15T09:00:00.000Z') });
});
afterAll(() => f.close());

const today = () => utcToday(f.clock.now());
const failure = async (p: Promise<unknown>) => {
  const e = await p.catch((error: unknown) => error);
  if (!(e instanceof AppError)) throw new Error('expected a refusal');
  return e;
};

describe('training gates access to personal data', () => {
  it('refuses an untrained member with STAFF_TRAINING_REQUIRED, lists, audits and mails the admins once a day', async () => {
    const admin = await f.member('admin');
    const customer = await f.customer();
    const agent = await f.member('support_agent', { trained: false });
    const refused = await failure(f.read(agent.id, 'support', customer));
    expect(refused.code).toBe('STAFF_TRAINING_REQUIRED');
    expect(refused.status).toBe(403);
    expect(refused.details).toEqual({ courses: ['security_awareness'] });

    const blocked = await f.staff.training.blocked({ kind: 'staff', memberId: admin.id, mfaVerifiedAt: null });
    expect(blocked.map((b) => b.memberId)).toContain(agent.id);
    const entries = await f.audit.forSubject(customer, { limit: 20 });
    expect(entries.some((e) => e.action === 'staff.access.training_required' && e.actor === `staff:${agent.id}` && e.outcome === 'denied')).toBe(true);
    const toAdmin = () => f.mails.filter((m) => m.to === admin.email && m.text.includes(agent.id));
    expect(toAdmin()).toHaveLength(1);
    expect(toAdmin()[0]!.text).not.toContain('ada@example.org');

    await failure(f.read(agent.id, 'support', customer));
    expect(toAdmin()).toHaveLength(1);
    f.clock.advance(DAY + 1000);
    await failure(f.read(agent.id, 'support', customer));
    expect(toAdmin()).toHaveLength(2);
  });

  it('expires a completion after 12 months and renews access when a new one is recorded', async () => {
    const customer = await f.customer();
    const agent = await f.member('support_agent', { trained: false });
    const completedOn = today();
    const { expiresOn } = await f.staff.training.recordCompletion(CLI_OPERATOR, { memberId: agent.id, course: 'security_awareness', completedOn });
    expect(expiresOn.slice(0, 4)).toBe(String(Number(completedOn.slice(0, 4)) + 1));
    expect(expiresOn.slice(4)).toBe(completedOn.slice(4));
    expect((await f.read(agent.id, 'support', customer)).name).toBe('Ada Lovelace');

    f.clock.set(new Date(Date.parse(`${expiresOn}T00:00:00.000Z`) - 1));
    expect((await f.read(agent.id, 'support', customer)).name).toBe('Ada Lovelace');
    f.clock.advance(1);
    const refused = await failure(f.read(agent.id, 'support', customer));
    expect(refused.code).toBe('STAFF_TRAINING_REQUIRED');
    const status = await f.staff.training.status(CLI_OPERATOR, agent.id);
    expect(status.courses).toEqual([{ course: 'security_awareness', required: true, completedOn, expiresOn, state: 'expired' }]);
    expect(status.blocked).toBe(true);

    await f.staff.training.recordCompletion(CLI_OPERATOR, { memberId: agent.id, course: 'security_awareness', completedOn: today() });
    expect((await f.read(agent.id, 'support', customer)).name).toBe('Ada Lovelace');
    expect((await f.staff.training.status(CLI_OPERATOR, agent.id)).blocked).toBe(false);
  });

  it('requires a course only of the roles it names', async () => {
    await f.staff.training.defineCourse(CLI_OPERATOR, { name: 'pci_awareness', title: 'PCI awareness', requiredFor: ['support_agent'] });
    try {
      const customer = await f.customer();
      const agent = await f.member('support_agent', { trained: false });
      const packer = await f.member('fulfilment', { trained: false });
      await f.staff.training.recordCompletion(CLI_OPERATOR, { memberId: agent.id, course: 'security_awareness', completedOn: today() });
      await f.staff.training.recordCompletion(CLI_OPERATOR, { memberId: packer.id, course: 'security_awareness', completedOn: today() });
      expect((await failure(f.read(agent.id, 'support', customer))).details).toEqual({ courses: ['pci_awareness'] });
      expect((await f.read(packer.id, 'fulfilment', customer)).name).toBe('Ada Lovelace');
      await f.staff.training.recordCompletion(CLI_OPERATOR, { memberId: agent.id, course: 'pci_awareness', completedOn: today() });
      expect((await f.read(agent.id, 'support', customer)).name).toBe('Ada Lovelace');
    } finally {
      await f.staff.training.removeCourse(CLI_OPERATOR, 'pci_awareness');
    }
  });

  it('refuses impossible and future completion dates, unknown courses and roles', async () => {
    const agent = await f.member('support_agent', { trained: false });
    const tomorrow = utcToday(new Date(f.clock.now().getTime() + DAY));
    const record = (course: string, completedOn: string) => f.staff.training.recordCompletion(CLI_OPERATOR, { memberId: agent.id, course, completedOn });
    expect(await codeOf(record('security_awareness', tomorrow))).toBe('STAFF_TRAINING_DATE_INVALID');
    expect(await codeOf(record('security_awareness', '2025-02-30'))).toBe('STAFF_TRAINING_DATE_INVALID');
    expect(await codeOf(record('security_awareness', '15.01.2025'))).toBe('STAFF_TRAINING_DATE_INVALID');
    expect(await codeOf(record('knitting', today()))).toBe('STAFF_COURSE_UNKNOWN');
    expect(await codeOf(f.staff.training.defineCourse(CLI_OPERATOR, { name: 'x', requiredFor: 'all' }))).toBe('STAFF_COURSE_INVALID');
    expect(await codeOf(f.staff.training.defineCourse(CLI_OPERATOR, { name: 'gdpr_basics', requiredFor: ['pirate'] }))).toBe('STAFF_COURSE_INVALID');
  });

  it('lets only training managers record completions or see others, and members see their own', async () => {
    const agent = await f.member('support_agent');
    const other = await f.member('fulfilment');
    const op = { kind: 'staff' as const, memberId: agent.id, mfaVerifiedAt: null };
    const record = f.staff.training.recordCompletion(op, { memberId: agent.id, course: 'security_awareness', completedOn: today() });
    expect(await codeOf(record)).toBe('STAFF_PERMISSION_DENIED');
    expect(await codeOf(f.staff.training.status(op, other.id))).toBe('STAFF_PERMISSION_DENIED');
    expect(await codeOf(f.staff.training.blocked(op))).toBe('STAFF_PERMISSION_DENIED');
    expect((await f.staff.training.status(op, agent.id)).blocked).toBe(false);
  });

  it('a training manager cannot certify their own training (self-certification)', async () => {
    const admin = await f.member('admin', { trained: false });
    const other = await f.member('admin');
    const self = { kind: 'staff' as const, memberId: admin.id, mfaVerifiedAt: null };
    const refused = await failure(f.staff.training.recordCompletion(self, { memberId: admin.id, course: 'security_awareness', completedOn: today() }));
    expect(refused.code).toBe('STAFF_TRAINING_SELF_CERTIFICATION');
    expect(refused.status).toBe(403);
    expect((await f.staff.training.status(self, admin.id)).blocked).toBe(true);
    // A second manager records it.
    await f.staff.training.recordCompletion({ kind: 'staff', memberId: other.id, mfaVerifiedAt: null }, { memberId: admin.id, course: 'security_awareness', completedOn: today() });
    expect((await f.staff.training.status(self, admin.id)).blocked).toBe(false);
  });
});
