import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authApp, browser, CookieJar, enrolTotp, signIn, staffMember, STRONG, type AuthTest } from '../identity/helpers.ts';
import { TEST_DIALECT } from '../support/store.ts';
import { apiKey, call, expectError } from '../vault/helpers.ts';

/**
 * /v1/security/incidents through the whole server: staff sessions of members holding
 * incidents.manage only (a support agent is refused, an API key never reaches the staff scope,
 * whatever its purposes); the register, the clock, the timeline, the blast radius of a leaked
 * payments key over real card and customer reads (with the card brand for the PCI DSS 12.10.1
 * step), and the drafts; the blast radius's reading audited.
 */
const PAN = '6011111111111117';

describe(`/v1/security/incidents (${TEST_DIALECT})`, () => {
  let t: AuthTest;
  let leaked: { auth: string; id: string };
  let customerId: string;
  const today = () => t.clock.now().toISOString().slice(0, 10);
  const signedIn = async (role: string) => {
    const { email, memberId } = await staffMember(t, role, { trainedOn: today() });
    const { jar } = await signIn(t, email, STRONG, new CookieJar(), '/v1/staff/auth');
    await enrolTotp(t, jar, '/v1/staff/auth');
    return { jar, memberId };
  };

  beforeAll(async () => {
    t = await authApp();
    leaked = await apiKey(t, ['account', 'payments']);
    const created = await call(t, { method: 'POST', url: '/v1/customers', auth: leaked.auth, payload: { email: 'ada@example.org', name: 'Ada Lovelace' } });
    expect(created.statusCode, created.body).toBe(201);
    customerId = created.json<{ id: string }>().id;
    t.clock.advance(60_000);
    const card = await call(t, { method: 'POST', url: '/v1/cards', auth: leaked.auth, purpose: 'payments', payload: { pan: PAN, exp_month: 1, exp_year: 2030, customer_id: customerId } });
    expect(card.statusCode, card.body).toBe(201);
    const token = card.json<{ token: string }>().token;
    expect((await call(t, { url: `/v1/cards/${token}`, auth: leaked.auth, purpose: 'payments' })).statusCode).toBe(200);
    expect((await call(t, { url: `/v1/customers/${customerId}`, auth: leaked.auth, purpose: 'account' })).statusCode).toBe(200);
    t.clock.advance(60_000);
  });
  afterAll(async () => t?.close());

  it('refuses without a staff session, to an API key of any purposes, and to a member without incidents.manage', async () => {
    expectError(await call(t, { url: '/v1/security/incidents' }), 401, 'STAFF_SESSION_REQUIRED');
    const everything = await t.bearer(['account', 'support', 'fraud_prevention', 'payments', 'rights']);
    const byKey = await call(t, { method: 'POST', url: '/v1/security/incidents', auth: everything, payload: { title: 'x', severity: 'low' } });
    expectError(byKey, 401, 'STAFF_SESSION_REQUIRED');
    expectError(await call(t, { url: '/v1/security/incidents', auth: everything }), 401, 'STAFF_SESSION_REQUIRED');
    const { jar } = await signedIn('support_agent');
    expectError(await browser(t, jar, 'GET', '/v1/security/incidents'), 403, 'STAFF_PERMISSION_DENIED');
    expectError(await browser(t, jar, 'POST', '/v1/security/incidents', { title: 'Mine now', severity: 'low' }), 403, 'STAFF_PERMISSION_DENIED');
    expect(await t.runtime.store.db.selectFrom('incidents').select('id').execute()).toEqual([]);
  });

  it('runs an incident: open with a scope, clock, status, timeline, blast radius with the card step, drafts; bad input stores nothing', async () => {
    const { jar, memberId } = await signedIn('security_officer');
    const bad = await browser(t, jar, 'POST', '/v1/security/incidents', { title: 'x', severity: 'huge' });
    expect(bad.statusCode).toBe(400);
    expect(await t.runtime.store.db.selectFrom('incidents').select('id').execute()).toEqual([]);

    const from = new Date(t.clock.now().getTime() - 3_600_000).toISOString();
    const opened = await browser(t, jar, 'POST', '/v1/security/incidents', {
      title: 'Payments API key found in a public repository',
      severity: 'critical',
      description: 'A developer pushed the .env file.',
      scope: { actor: { kind: 'apikey', id: leaked.id }, from },
    });
    expect(opened.statusCode, opened.body).toBe(201);
    expect(opened.headers['cache-control']).toBe('no-store');
    const incident = opened.json<{ id: string; status: string; clock: { state: string; remaining_seconds: number }; created_by: string }>();
    expect(incident).toMatchObject({ status: 'open', clock: { state: 'running', remaining_seconds: 72 * 3600 }, created_by: `staff:${memberId}` });

    const contained = await browser(t, jar, 'POST', `/v1/security/incidents/${incident.id}/status`, { status: 'contained', note: 'key revoked' });
    expect(contained.statusCode, contained.body).toBe(200);
    expect((await browser(t, jar, 'POST', `/v1/security/incidents/${incident.id}/status`, { status: 'open' })).statusCode).toBe(409);
    const noted = await browser(t, jar, 'POST', `/v1/security/incidents/${incident.id}/timeline`, { note: 'repository made private' });
    expect(noted.statusCode).toBe(201);
    const patched = await browser(t, jar, 'PATCH', `/v1/security/incidents/${incident.id}`, { measures: 'Key revoked, repository history rewritten, card brand informed.' });
    expect(patched.statusCode, patched.body).toBe(200);
    const got = (await browser(t, jar, 'GET', `/v1/security/incidents/${incident.id}`)).json<{ measures: string; timeline: { kind: string; note: string | null }[] }>();
    expect(got.measures).toContain('Key revoked');
    expect(got.timeline.map((e) => e.kind)).toEqual(['opened', 'status', 'note', 'update']);
    expect(got.timeline[2]!.note).toBe('repository made private');
    const listed = (await browser(t, jar, 'GET', '/v1/security/incidents?status=contained')).json<{ data: { id: string }[] }>();
    expect(listed.data.map((i) => i.id)).toEqual([incident.id]);

    const radius = await browser(t, jar, 'GET', `/v1/security/incidents/${incident.id}/blast-radius`);
    expect(radius.statusCode, radius.body).toBe(200);
    const r = radius.json<{ customers: { customer_id: string }[]; customers_total: number; cards: { involved: boolean; brands: Record<string, number> }; keys: { root_provider: string }; totals: { customers: number } }>();
    expect(r.customers.map((c) => c.customer_id)).toEqual([customerId]);
    expect(r.cards).toMatchObject({ involved: true, brands: { discover: 1 } });
    expect(r.keys.root_provider).toBe('env');
    expect(radius.body).not.toContain(PAN);
    expect(radius.body).not.toContain('Lovelace');
    const page = (await browser(t, jar, 'GET', `/v1/security/incidents/${incident.id}/blast-radius?limit=1&after=${customerId}`)).json<{ customers: unknown[]; customers_total: number }>();
    expect(page).toMatchObject({ customers: [], customers_total: 1 });

    const drafts = await browser(t, jar, 'GET', `/v1/security/incidents/${incident.id}/drafts`);
    expect(drafts.statusCode).toBe(200);
    const d = drafts.json<{ authority: { markdown: string; html: string }; customers: { markdown: string; html: string } }>();
    expect(d.authority.html).toContain('PCI DSS 4.0.1 12.10.1');
    expect(d.authority.html).toContain('discover: 1');
    expect(d.authority.markdown).toContain('Key revoked, repository history rewritten');
    expect(d.customers.html).toContain('<!doctype html>');

    await t.runtime.audit.chainPending();
    const audited = await t.runtime.store.db
      .selectFrom('audit_log')
      .select(['action', 'actor', 'outcome'])
      .where('record_id', '=', incident.id)
      .where('action', 'like', 'incidents.%')
      .orderBy('id')
      .execute();
    expect(audited.map((a) => a.action)).toEqual([
      'incidents.opened',
      'incidents.status_changed',
      'incidents.timeline_added',
      'incidents.updated',
      'incidents.read',
      'incidents.affected_read',
      'incidents.affected_read',
      'incidents.drafted',
    ]);
    expect(new Set(audited.map((a) => a.actor))).toEqual(new Set([`staff:${memberId}`]));
    // Nothing of the incident's text or the customer reaches the log.
    expect(t.logs.join('')).not.toMatch(/public repository|Lovelace|ada@example\.org/);
  });
});
