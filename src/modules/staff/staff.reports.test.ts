import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeOf, staffFixture, type StaffFixture } from './test-support/fixture.ts';

let f: StaffFixture;
beforeAll(async () => {
  f = await staffFixture();
});
afterAll(() => f.close());

const summary = 'Mail from ceo-urgent@paypa1.example asks for gift cards';
const details = 'Arrived 09:14 to the support mailbox; link points to hxxp://paypa1.example/login';

describe('threat reports', () => {
  it('stores the text encrypted: neither summary nor details appear anywhere in the table', async () => {
    const agent = await f.member('support_agent');
    const { id } = await f.staff.reports.create(agent.ctx, { kind: 'phishing', summary, details });
    const rows = await sql<Record<string, unknown>>`SELECT * FROM staff_reports`.execute(f.db);
    const dump = JSON.stringify(rows.rows);
    expect(dump).toContain(id);
    for (const needle of ['paypa1', 'gift cards', 'support mailbox', Buffer.from(summary).toString('base64url').slice(0, 16)]) expect(dump).not.toContain(needle);
  });

  it('lists reports to security officers only, and audits filing and reading', async () => {
    const agent = await f.member('support_agent');
    const security = await f.member('security_officer');
    const admin = await f.member('admin');
    const { id } = await f.staff.reports.create(agent.ctx, { kind: 'lost_device', summary: 'Left my work laptop on the train' }, 'req-1');
    expect(f.mails.some((m) => m.to === security.email && m.text.includes(id) && !m.text.includes('laptop'))).toBe(true);

    expect(await codeOf(f.staff.reports.list(agent.ctx))).toBe('STAFF_PERMISSION_DENIED');
    expect(await codeOf(f.staff.reports.list(admin.ctx))).toBe('STAFF_PERMISSION_DENIED');
    const listed = await f.staff.reports.list(security.ctx);
    expect(listed.find((r) => r.id === id)).toMatchObject({ reporterId: agent.id, kind: 'lost_device', summary: 'Left my work laptop on the train', details: null });

    const actions = await sql<{ actor: string; action: string; record_id: string | null }>`SELECT actor, action, record_id FROM audit_log`.execute(f.db);
    expect(actions.rows).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ actor: `staff:${agent.id}`, action: 'staff.report.create', record_id: id }),
        expect.objectContaining({ actor: `staff:${security.id}`, action: 'staff.report.read' }),
      ]),
    );
  });

  it('takes reports from a member without a second factor (the one whose phone was lost)', async () => {
    const agent = await f.member('fulfilment', { mfa: false, trained: false });
    expect(await codeOf(f.staff.reports.create(agent.ctx, { kind: 'lost_device', summary: 'Phone with my authenticator is gone' }))).toBe('ok');
  });

  it('bounds the text and the kinds', async () => {
    const agent = await f.member('support_agent');
    const file = (input: Record<string, unknown>) =>
      f.staff.reports.create(agent.ctx, input as Parameters<StaffFixture['staff']['reports']['create']>[1]);
    expect(await codeOf(file({ kind: 'gossip', summary: 'x' }))).toBe('STAFF_REPORT_INVALID');
    expect(await codeOf(file({ kind: 'other', summary: '   ' }))).toBe('STAFF_REPORT_INVALID');
    expect(await codeOf(file({ kind: 'other', summary: 'x'.repeat(501) }))).toBe('STAFF_REPORT_INVALID');
    expect(await codeOf(file({ kind: 'other', summary: 'ok', details: 'x'.repeat(4001) }))).toBe('STAFF_REPORT_INVALID');
    expect(await codeOf(file({ kind: 'suspicious_activity', summary: 'x'.repeat(500), details: 'y'.repeat(4000) }))).toBe('ok');
  });

  // Attack: a database writer moves one report's ciphertext onto another row to change what it says.
  it('refuses to open a sealed report moved to another row', async () => {
    const agent = await f.member('support_agent');
    const security = await f.member('security_officer');
    const a = await f.staff.reports.create(agent.ctx, { kind: 'other', summary: 'first report' });
    const b = await f.staff.reports.create(agent.ctx, { kind: 'other', summary: 'second report' });
    const sealedA = await f.db.selectFrom('staff_reports').select('sealed').where('id', '=', a.id).executeTakeFirstOrThrow();
    await f.db.updateTable('staff_reports').set({ sealed: sealedA.sealed }).where('id', '=', b.id).execute();
    await expect(f.staff.reports.list(security.ctx)).rejects.toThrow(/failed to open/);
    await f.db.deleteFrom('staff_reports').where('id', '=', b.id).execute();
  });
});
