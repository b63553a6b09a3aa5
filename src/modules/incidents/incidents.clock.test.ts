import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DIALECT } from '../../../test/support/store.ts';
import { CLI_OPERATOR } from '../staff/ports.ts';
import { codeOf } from '../staff/test-support/fixture.ts';
import { incidentFixture, type IncidentFixture } from './test-support/fixture.ts';

/**
 * The GDPR Art. 33(1) clock: 72 hours from aware_at; reminders at 24, 48 and 66 hours and at the
 * deadline, mailed once to the holders of incidents.manage (never to others), also when two
 * processes run the job at the same moment; none once the authority is notified.
 */
const HOUR = 3_600_000;
let f: IncidentFixture;
beforeAll(async () => {
  f = await incidentFixture();
});
afterAll(() => f.close());

const reminderMails = () => f.mails.filter((m) => m.subject.startsWith('Custos: incident '));

describe(`incident clock and reminders (${TEST_DIALECT})`, () => {
  it('runs 72 hours from aware_at, reminds the incidents.manage holders at 24, 48, 66 and 72 hours, once each', async () => {
    const officer = await f.officer();
    const agent = await f.member('support_agent');
    const opened = await f.incidents.open(officer, { title: 'Support account phished', severity: 'high' });
    const aware = f.clock.now().getTime();
    expect(opened.clock).toMatchObject({ state: 'running', remaining_seconds: 72 * 3600, deadline_at: new Date(aware + 72 * HOUR).toISOString() });
    const job = f.reminders();
    f.mails.length = 0;

    expect(await job.run()).toBe(0);
    f.clock.advance(24 * HOUR - 1000);
    expect(await job.run()).toBe(0);
    f.clock.advance(1000);
    expect(await job.run()).toBe(1);
    expect(await job.run()).toBe(0);
    expect(reminderMails().map((m) => m.to)).toEqual([officer.email]);
    expect(reminderMails()[0]!.subject).toContain('48 hours left');
    expect(reminderMails().some((m) => m.to === agent.email)).toBe(false);
    // No title or other free text in the mail: ids and times only.
    expect(reminderMails()[0]!.text).not.toContain('phished');

    f.clock.advance(24 * HOUR);
    expect(await job.run()).toBe(1);
    f.clock.advance(18 * HOUR);
    expect(await job.run()).toBe(1);
    f.clock.advance(6 * HOUR);
    expect(await job.run()).toBe(1);
    expect(await job.run()).toBe(0);
    const subjects = reminderMails().map((m) => m.subject.replace(/^.*: (.*) to notify.*$/, '$1'));
    expect(subjects).toEqual(['48 hours left', '24 hours left', '6 hours left', 'the 72-hour deadline is reached']);

    expect((await f.incidents.get(officer, opened.id)).clock).toMatchObject({ state: 'running', remaining_seconds: 0 });
    f.clock.advance(1000);
    const now = await f.incidents.get(officer, opened.id);
    expect(now.clock).toMatchObject({ state: 'overdue', remaining_seconds: -1 });
    expect(now.timeline.filter((e) => e.kind === 'reminder').map((e) => e.detail.hours)).toEqual([24, 48, 66, 72]);
    const audited = await f.db.selectFrom('audit_log').select(['actor', 'fields']).where('action', '=', 'incidents.reminder_sent').where('record_id', '=', opened.id).execute();
    expect(audited.map((a) => a.fields)).toEqual(['["hours_24"]', '["hours_48"]', '["hours_66"]', '["hours_72"]']);

    // Notified late: the clock stops, the state says late, no more reminders.
    const notified = await f.incidents.setStatus(officer, opened.id, { status: 'notified' });
    expect(notified.clock).toMatchObject({ state: 'notified_late', remaining_seconds: null });
  });

  it('sends each reminder once when two processes run the job at the same moment', async () => {
    const officer = await f.officer();
    const opened = await f.incidents.open(CLI_OPERATOR, { title: 'Lost laptop', severity: 'medium' });
    f.clock.advance(48 * HOUR + 60_000);
    f.mails.length = 0;
    const [a, b] = [f.reminders(), f.reminders()];
    const results = await Promise.all([a.run(), b.run(), a.runLeased(), b.runLeased()]);
    expect(results.filter((r) => r !== undefined).reduce((n: number, r) => n + r!, 0)).toBe(1);
    // Thresholds skipped while nobody ran the job: one mail, for the latest (24 hours left).
    const mine = reminderMails().filter((m) => m.subject.includes(opened.id));
    expect(mine.filter((m) => m.to === officer.email)).toHaveLength(1);
    expect(mine[0]!.subject).toContain('24 hours left');
    const rows = await f.db.selectFrom('incident_reminders').selectAll().where('incident_id', '=', opened.id).orderBy('hours').execute();
    expect(rows.map((r) => r.hours)).toEqual([24, 48]);
    await f.incidents.setStatus(CLI_OPERATOR, opened.id, { status: 'closed', note: 'laptop found; disk encrypted' });
  });

  it('stops once the authority is notified in time, and a closed incident gets no reminder', async () => {
    const notified = await f.incidents.open(CLI_OPERATOR, { title: 'Mass read', severity: 'critical' });
    const closed = await f.incidents.open(CLI_OPERATOR, { title: 'False alarm', severity: 'low' });
    f.clock.advance(2 * HOUR);
    const stopped = await f.incidents.setStatus(CLI_OPERATOR, notified.id, { status: 'notified' });
    expect(stopped.clock.state).toBe('notified_in_time');
    expect(stopped.clock.notified_at).toBe(f.clock.now().toISOString());
    // Closing without notifying needs the reason (GDPR Art. 33(5)).
    expect(await codeOf(f.incidents.setStatus(CLI_OPERATOR, closed.id, { status: 'closed' }))).toBe('INCIDENTS_NOTE_REQUIRED');
    const done = await f.incidents.setStatus(CLI_OPERATOR, closed.id, { status: 'closed', note: 'no personal data involved' });
    expect(done.clock.state).toBe('closed_without_notification');
    f.clock.advance(80 * HOUR);
    f.mails.length = 0;
    await f.reminders().run();
    expect(reminderMails().filter((m) => m.subject.includes(notified.id) || m.subject.includes(closed.id))).toEqual([]);
  });

  it('moves only along open → contained → notified → closed; reopening needs a note; aware_at may not lie ahead', async () => {
    const i = await f.incidents.open(CLI_OPERATOR, { title: 'Transitions', severity: 'low', aware_at: new Date(f.clock.now().getTime() - 10 * HOUR).toISOString() });
    expect(i.clock.remaining_seconds).toBe(62 * 3600);
    expect(await codeOf(f.incidents.setStatus(CLI_OPERATOR, i.id, { status: 'open' }))).toBe('INCIDENTS_TRANSITION_INVALID');
    await f.incidents.setStatus(CLI_OPERATOR, i.id, { status: 'contained' });
    expect(await codeOf(f.incidents.setStatus(CLI_OPERATOR, i.id, { status: 'open' }))).toBe('INCIDENTS_TRANSITION_INVALID');
    await f.incidents.setStatus(CLI_OPERATOR, i.id, { status: 'notified' });
    await f.incidents.setStatus(CLI_OPERATOR, i.id, { status: 'closed' });
    expect(await codeOf(f.incidents.setStatus(CLI_OPERATOR, i.id, { status: 'open' }))).toBe('INCIDENTS_NOTE_REQUIRED');
    const reopened = await f.incidents.setStatus(CLI_OPERATOR, i.id, { status: 'open', note: 'new evidence of a second account' });
    expect(reopened.closed_at).toBeNull();
    expect(reopened.timeline.filter((e) => e.kind === 'status').map((e) => `${String(e.detail.from)}>${String(e.detail.to)}`)).toEqual([
      'open>contained',
      'contained>notified',
      'notified>closed',
      'closed>open',
    ]);
    expect(reopened.timeline.at(-1)!.note).toBe('new evidence of a second account');
    const ahead = new Date(f.clock.now().getTime() + HOUR).toISOString();
    expect(await codeOf(f.incidents.open(CLI_OPERATOR, { title: 'Ahead', severity: 'low', aware_at: ahead }))).toBe('INCIDENTS_INVALID');
    // Reopening keeps the notification on record (the clock stays stopped); a correction of aware_at moves a running clock.
    expect(reopened.clock.state).toBe('notified_in_time');
    const running = await f.incidents.open(CLI_OPERATOR, { title: 'Later found out', severity: 'low' });
    const moved = await f.incidents.update(CLI_OPERATOR, running.id, { aware_at: new Date(f.clock.now().getTime() - 71 * HOUR).toISOString() });
    expect(moved.clock.remaining_seconds).toBe(3600);
  });
});
