import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_OPERATOR } from '../../src/modules/staff/ports.ts';
import { authApp, type AuthTest } from '../identity/helpers.ts';
import { TEST_DIALECT } from '../support/store.ts';
import { apiKey, call } from '../vault/helpers.ts';

/**
 * The attack: a stolen API key used from an attacker's address. The officer knows only that
 * address (a firewall log, an alert naming the source), and the audit log holds no addresses by
 * design. Scoped by the source, the blast radius finds the actors detection saw from it
 * (detection_sources) — the stolen key, and a key used from another address in the same /64 of
 * IPv6 — and then their audit entries; a key used only from the shop's office is not counted. A
 * window starting before the 30 days of kept sources is refused rather than answered short.
 */
const ATTACKER = '203.0.113.66';
const OFFICE = '198.51.100.10';

describe(`blast radius by source address, resolved through detection's sources (${TEST_DIALECT})`, () => {
  let t: AuthTest;
  let stolen: { auth: string; id: string };
  let office: { auth: string; id: string };
  let v6: { auth: string; id: string };
  const ids: string[] = [];
  let from: string;

  const from_ = (address: string) => ({ 'x-forwarded-for': address });
  beforeAll(async () => {
    t = await authApp();
    stolen = await apiKey(t, ['account']);
    office = await apiKey(t, ['account']);
    v6 = await apiKey(t, ['account']);
    from = t.clock.now().toISOString();
    for (const n of [1, 2, 3]) {
      const created = await call(t, { method: 'POST', url: '/v1/customers', auth: office.auth, headers: from_(OFFICE), payload: { email: `c${n}@example.org`, name: `Customer ${n}` } });
      expect(created.statusCode, created.body).toBe(201);
      ids.push(created.json<{ id: string }>().id);
    }
    t.clock.advance(60_000);
    for (const id of ids.slice(0, 2)) expect((await call(t, { url: `/v1/customers/${id}`, auth: stolen.auth, purpose: 'account', headers: from_(ATTACKER) })).statusCode).toBe(200);
    expect((await call(t, { url: `/v1/customers/${ids[2]}`, auth: office.auth, purpose: 'account', headers: from_(OFFICE) })).statusCode).toBe(200);
    expect((await call(t, { url: `/v1/customers/${ids[2]}`, auth: v6.auth, purpose: 'account', headers: from_('2001:db8:7:8::5') })).statusCode).toBe(200);
    t.clock.advance(60_000);
    await t.runtime.detection.settle();
  });
  afterAll(async () => t?.close());

  it("an incident scoped by the attacker's address finds the stolen key and the customers it read, not the office key", async () => {
    const incident = await t.runtime.incidents.open(CLI_OPERATOR, {
      title: 'Reads from a hosting range',
      severity: 'high',
      scope: { actor: { kind: 'source', id: ATTACKER }, from, to: t.clock.now().toISOString() },
    });
    const r = await t.runtime.incidents.blastRadius(CLI_OPERATOR, incident.id);
    expect(r.actor).toEqual({ kind: 'source', id: ATTACKER });
    expect(r.actors).toEqual([`apikey:${stolen.id}`]);
    expect(r.customers.map((c) => c.customer_id).sort()).toEqual(ids.slice(0, 2).sort());
    const office_ = await t.runtime.incidents.blastRadius(CLI_OPERATOR, incident.id, { actor_kind: 'source', actor_id: OFFICE, from, to: t.clock.now().toISOString() });
    expect(office_.actors).toEqual([`apikey:${office.id}`]);
    expect(office_.customers.map((c) => c.customer_id).sort()).toEqual([...ids].sort());
  });

  it('an IPv6 address resolves by its /64, as detection keys it', async () => {
    const incident = await t.runtime.incidents.open(CLI_OPERATOR, { title: 'IPv6 range', severity: 'low' });
    const r = await t.runtime.incidents.blastRadius(CLI_OPERATOR, incident.id, { actor_kind: 'source', actor_id: '2001:db8:7:8::99', from, to: t.clock.now().toISOString() });
    expect(r.actor).toEqual({ kind: 'source', id: '2001:db8:7:8::/64' });
    expect(r.actors).toEqual([`apikey:${v6.id}`]);
    expect(r.customers.map((c) => c.customer_id)).toEqual([ids[2]]);
  });

  it('a window outside the sightings finds no actor; one starting before the kept history is refused', async () => {
    const incident = await t.runtime.incidents.open(CLI_OPERATOR, { title: 'Earlier', severity: 'low' });
    const before = new Date(Date.parse(from) - 3 * 3_600_000).toISOString();
    const earlier = await t.runtime.incidents.blastRadius(CLI_OPERATOR, incident.id, { actor_kind: 'source', actor_id: ATTACKER, from: before, to: new Date(Date.parse(from) - 2 * 3_600_000).toISOString() });
    expect(earlier.actors).toEqual([]);
    const longAgo = new Date(Date.parse(from) - 40 * 86_400_000).toISOString();
    await expect(t.runtime.incidents.blastRadius(CLI_OPERATOR, incident.id, { actor_kind: 'source', actor_id: ATTACKER, from: longAgo, to: from })).rejects.toMatchObject({ code: 'INCIDENTS_SOURCE_UNRESOLVED' });
  });

  it('the addresses live in detection\'s pruned table, never in the audit log', async () => {
    await t.runtime.audit.chainPending();
    const log = JSON.stringify(await t.runtime.store.db.selectFrom('audit_log').selectAll().execute());
    for (const address of [ATTACKER, OFFICE, '2001:db8:7:8']) expect(log).not.toContain(address);
    const sources = await t.runtime.store.db.selectFrom('detection_sources').select(['actor', 'source']).execute();
    expect(sources).toContainEqual({ actor: `apikey:${stolen.id}`, source: ATTACKER });
  });
});
