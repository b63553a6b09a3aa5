import { readdirSync, readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DIALECT } from '../../../test/support/store.ts';
import { newId } from '../../kernel/ids.ts';
import type { Alert } from '../detection/contracts.ts';
import { CLI_OPERATOR } from '../staff/ports.ts';
import { codeOf } from '../staff/test-support/fixture.ts';
import { INCIDENT_AUDIT_ACTIONS } from './module.ts';
import { LOOKBACK_HOURS } from './service.ts';
import { incidentFixture, type IncidentFixture } from './test-support/fixture.ts';

/**
 * Opening an incident from an alert (through the AlertLookup contract), from a staff threat
 * report, or by hand; what each suggests; free text sealed at rest; module.ts true to the code.
 */
const HOUR = 3_600_000;
let f: IncidentFixture;
beforeAll(async () => {
  f = await incidentFixture();
});
afterAll(() => f.close());

const alert = (over: Partial<Alert>): Alert => ({
  id: newId('alr'),
  rule: 'bulk_read',
  severity: 'high',
  status: 'open',
  title: 'Bulk read by an API key',
  actor: null,
  source: null,
  count: 412,
  detail: { customers: 412 },
  actions: [],
  first_seen: new Date(f.clock.now().getTime() - 2 * HOUR).toISOString(),
  last_seen: f.clock.now().toISOString(),
  acknowledged_by: null,
  acknowledged_at: null,
  closed_by: null,
  closed_at: null,
  note: null,
  ...over,
});

describe(`opening incidents (${TEST_DIALECT})`, () => {
  it('from an alert: its title, severity and actor, the window from a lookback before it was first seen', async () => {
    const keyId = newId('key');
    const a = alert({ actor: { kind: 'apikey', id: keyId, name: 'storefront' } });
    f.alerts.set(a.id, a);
    const i = await f.incidents.open(CLI_OPERATOR, { from_alert: a.id });
    expect(i).toMatchObject({ title: a.title, severity: 'high', origin: { kind: 'alert', ref: a.id } });
    expect(i.scope).toEqual({ actor: { kind: 'apikey', id: keyId }, from: new Date(Date.parse(a.first_seen) - LOOKBACK_HOURS * HOUR).toISOString(), to: null });
    // A source alert scopes by source; the caller's own title and severity win.
    const s = alert({ rule: 'credential_stuffing', actor: null, source: '2001:db8:1:2::/64' });
    f.alerts.set(s.id, s);
    const j = await f.incidents.open(CLI_OPERATOR, { from_alert: s.id, title: 'Credential stuffing from one network', severity: 'critical' });
    expect(j).toMatchObject({ title: 'Credential stuffing from one network', severity: 'critical', scope: { actor: { kind: 'source', id: '2001:db8:1:2::/64' } } });
    expect(await codeOf(f.incidents.open(CLI_OPERATOR, { from_alert: newId('alr') }))).toBe('INCIDENTS_ORIGIN_NOT_FOUND');
  });

  it("from a staff threat report: its kind in the title, the reporter's account as the scope; the report's text stays with reports.read", async () => {
    const reporter = await f.member('support_agent');
    const report = await f.staff.reports.create({ memberId: reporter.id }, { kind: 'phishing', summary: 'I typed my password into a fake login page' });
    const i = await f.incidents.open(CLI_OPERATOR, { from_report: report.id });
    expect(i).toMatchObject({ title: 'Staff threat report (phishing)', severity: 'medium', origin: { kind: 'report', ref: report.id }, scope: { actor: { kind: 'staff', id: reporter.id } } });
    expect(JSON.stringify(i)).not.toContain('fake login');
    expect(await codeOf(f.incidents.open(CLI_OPERATOR, { from_report: 'rpt_nope' }))).toBe('INCIDENTS_ORIGIN_NOT_FOUND');
    expect(await codeOf(f.incidents.open(CLI_OPERATOR, { from_report: report.id, from_alert: 'x' }))).toBe('INCIDENTS_INVALID');
  });

  it('by hand: a title and a severity are needed; bad input records nothing; free text is sealed at rest', async () => {
    const before = (await f.db.selectFrom('incidents').select('id').execute()).length;
    expect(await codeOf(f.incidents.open(CLI_OPERATOR, { title: 'No severity' }))).toBe('INCIDENTS_INVALID');
    expect(await codeOf(f.incidents.open(CLI_OPERATOR, { severity: 'low' }))).toBe('INCIDENTS_INVALID');
    expect(await codeOf(f.incidents.open(CLI_OPERATOR, { title: 'x', severity: 'low', scope: { actor: { kind: 'staff', id: 'bob' }, from: f.clock.now().toISOString() } }))).toBe('INCIDENTS_INVALID');
    expect((await f.db.selectFrom('incidents').select('id').execute()).length).toBe(before);
    const i = await f.incidents.open(CLI_OPERATOR, { title: 'Laptop of Jane Roe stolen', severity: 'medium', description: 'Jane Roe reported it at 9:00' });
    await f.incidents.addNote(CLI_OPERATOR, i.id, { note: 'Police report filed by Jane Roe' });
    const rows = JSON.stringify([
      await f.db.selectFrom('incidents').selectAll().where('id', '=', i.id).execute(),
      await f.db.selectFrom('incident_timeline').selectAll().where('incident_id', '=', i.id).execute(),
      await f.db.selectFrom('audit_log').selectAll().where('record_id', '=', i.id).execute(),
    ]);
    expect(rows).not.toContain('Jane');
    expect((await f.incidents.get(CLI_OPERATOR, i.id)).timeline.at(-1)!.note).toBe('Police report filed by Jane Roe');
  });
});

describe('incidents module.ts stays true', () => {
  it('declares exactly the audit actions the module writes', () => {
    const dir = new URL('.', import.meta.url);
    const used = new Set<string>();
    for (const file of readdirSync(dir).filter((n) => n.endsWith('.ts') && !n.includes('.test.') && n !== 'module.ts'))
      for (const m of readFileSync(new URL(file, dir), 'utf8').matchAll(/'(incidents\.[a-z_]+)'/g)) used.add(m[1]!);
    used.delete('incidents.manage'); // the permission, not an action
    expect([...used].sort()).toEqual([...INCIDENT_AUDIT_ACTIONS].sort());
  });
});
