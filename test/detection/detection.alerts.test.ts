import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import type { Io } from '../../src/cli/io.ts';
import type { Alert } from '../../src/modules/detection/contracts.ts';
import { staffSession } from '../../src/modules/consent/test-support/staff-session.ts';
import { authApp, SAME_ORIGIN, type AuthTest } from '../identity/helpers.ts';
import { TEST_DIALECT } from '../support/store.ts';
import { alertsOf, auditActions, codeOf } from './helpers.ts';

/**
 * The alerts API: who may see alerts (staff holding incidents.manage, API keys scoped to
 * `security`; nobody else), acknowledging and closing with a note (audited, once), paging, and the
 * critical alert a tampered audit log raises when `custos audit verify` finds it.
 */
let t: AuthTest;
let security: string;

/** A fresh relay alert (a call to a target off the allow-list by a key of its own). */
async function relayAlert(name: string): Promise<Alert> {
  const { key, info } = await t.runtime.apiKeys.create({ name, purposes: ['payments'] });
  await t.app.inject({
    method: 'POST',
    url: '/v1/relay',
    headers: { authorization: `Bearer ${key.reveal()}`, 'custos-purpose': 'payments' },
    payload: { url: 'https://elsewhere.example/pay', method: 'POST', body: {} },
  });
  const alert = (await alertsOf(t, security, '?rule=relay_off_allowlist')).find((a) => a.actor?.id === info.id);
  if (alert === undefined) throw new Error('no relay alert');
  return alert;
}

beforeAll(async () => {
  t = await authApp();
  security = await t.bearer(['security'], 'siem');
});
afterAll(async () => t?.close());

describe(`security alerts API (${TEST_DIALECT})`, () => {
  it('refuses API keys not scoped to security and staff without incidents.manage; a security officer sees them', async () => {
    const alert = await relayAlert('who-may-see');
    const other = await t.bearer(['support', 'account']);
    const refused = await t.app.inject({ method: 'GET', url: '/v1/security/alerts', headers: { authorization: other } });
    expect(refused.statusCode).toBe(403);
    expect(codeOf(refused)).toBe('DETECTION_NOT_ALLOWED');
    expect(codeOf(await t.app.inject({ method: 'GET', url: `/v1/security/alerts/${alert.id}`, headers: { authorization: other } }))).toBe('DETECTION_NOT_ALLOWED');
    expect((await t.app.inject({ method: 'GET', url: '/v1/security/alerts' })).statusCode).toBe(401);

    const agent = await staffSession(t, 'support_agent');
    const denied = await t.app.inject({ method: 'GET', url: '/v1/security/alerts', headers: agent.header() });
    expect(denied.statusCode).toBe(403);
    expect(codeOf(denied)).toBe('STAFF_PERMISSION_DENIED');

    const officer = await staffSession(t, 'security_officer');
    const seen = await t.app.inject({ method: 'GET', url: `/v1/security/alerts/${alert.id}`, headers: officer.header() });
    expect(seen.statusCode, seen.body).toBe(200);
    expect(seen.json<Alert>()).toEqual(alert);
  });

  it('acknowledges with an optional note and closes with a required one, each audited once; a closed alert stays closed', async () => {
    const alert = await relayAlert('ack-close');
    const officer = await staffSession(t, 'security_officer');
    const post = (path: string, payload?: unknown) =>
      t.app.inject({ method: 'POST', url: `/v1/security/alerts/${alert.id}/${path}`, headers: { ...officer.header(), ...SAME_ORIGIN }, ...(payload === undefined ? {} : { payload: payload as object }) });

    const acked = await post('ack');
    expect(acked.statusCode, acked.body).toBe(200);
    expect(acked.json<Alert>()).toMatchObject({ status: 'acknowledged', acknowledged_by: expect.stringMatching(/^staff:stf_/), note: null });
    // Acknowledging again changes nothing and is not audited again.
    expect((await post('ack', { note: 'on it' })).json<Alert>()).toEqual(acked.json<Alert>());
    expect(codeOf(await post('close', {}))).toBe('VAULT_FIELD_INVALID');
    const closed = await post('close', { note: 'Misconfigured test script; key rotated.' });
    expect(closed.json<Alert>()).toMatchObject({ status: 'closed', closed_by: acked.json<Alert>().acknowledged_by, note: 'Misconfigured test script; key rotated.' });
    expect(codeOf(await post('close', { note: 'again' }))).toBe('DETECTION_ALERT_CLOSED');
    expect(codeOf(await post('ack'))).toBe('DETECTION_ALERT_CLOSED');

    const audited = (await auditActions(t, 'security.alert_')).filter((e) => e.record_id === alert.id).map((e) => e.action);
    expect(audited).toEqual(['security.alert_raised', 'security.alert_acknowledged', 'security.alert_closed']);
    // An API key scoped to security may close alerts too.
    const second = await relayAlert('by-key');
    const byKey = await t.app.inject({ method: 'POST', url: `/v1/security/alerts/${second.id}/close`, headers: { authorization: security }, payload: { note: 'Known.' } });
    expect(byKey.json<Alert>()).toMatchObject({ status: 'closed', closed_by: expect.stringMatching(/^apikey:key_/) });
  });

  it('answers 404 for an unknown alert and 400 for a malformed id; lists by status, newest first, in pages', async () => {
    expect(codeOf(await t.app.inject({ method: 'GET', url: '/v1/security/alerts/alr_00000000000000000000000000', headers: { authorization: security } }))).toBe(
      'DETECTION_ALERT_NOT_FOUND',
    );
    expect(codeOf(await t.app.inject({ method: 'GET', url: '/v1/security/alerts/nonsense', headers: { authorization: security } }))).toBe('VAULT_ID_MALFORMED');
    await relayAlert('page-1');
    await relayAlert('page-2');
    const all = await alertsOf(t, security);
    const first = await t.app.inject({ method: 'GET', url: '/v1/security/alerts?limit=2', headers: { authorization: security } });
    const page = first.json<{ data: Alert[]; next_before: string | null }>();
    expect(page.data.map((a) => a.id)).toEqual(all.slice(0, 2).map((a) => a.id));
    const next = await t.app.inject({ method: 'GET', url: `/v1/security/alerts?limit=2&before=${page.next_before}`, headers: { authorization: security } });
    expect(next.json<{ data: Alert[] }>().data.map((a) => a.id)).toEqual(all.slice(2, 4).map((a) => a.id));
    const open = await alertsOf(t, security, '?status=open');
    expect(open.length).toBeGreaterThan(0);
    expect(open.every((a) => a.status === 'open')).toBe(true);
  });
});

describe(`a tampered audit log (${TEST_DIALECT})`, () => {
  it('custos audit verify fails and raises the critical audit_tamper alert', async () => {
    await t.runtime.audit.chainPending();
    const first = await t.runtime.store.db.selectFrom('audit_log').select('id').orderBy('id').limit(1).executeTakeFirstOrThrow();
    await sql`UPDATE audit_log SET outcome = 'denied' WHERE id = ${first.id}`.execute(t.runtime.store.db);
    const out: string[] = [];
    const io: Io = { out: (l) => void out.push(l), err: () => undefined, progress: () => undefined, done: () => undefined };
    expect(await main(['audit', 'verify'], io, t.env)).toBe(1);
    expect(out.join('\n')).toMatch(/BROKEN/);
    const alerts = await alertsOf(t, security, '?rule=audit_tamper');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ severity: 'critical', actor: null, detail: { check: 'tree' } });
  });
});
