import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DIALECT } from '../../../test/support/store.ts';
import { newId } from '../../kernel/ids.ts';
import { activityQuery } from '../audit/activity.ts';
import type { Actor } from '../policy/service.ts';
import { CLI_OPERATOR } from '../staff/ports.ts';
import { codeOf } from '../staff/test-support/fixture.ts';
import { createIncidentService } from './service.ts';
import { incidentFixture, type IncidentFixture } from './test-support/fixture.ts';

/**
 * The blast radius from the audit log: a staff member's real vault reads across two customers,
 * with a third read just past the window's end and another actor's reads beside them; an API
 * key's reads and writes; a source resolved through the injected resolver; access only for
 * incidents.manage, and every reading audited.
 */
const MIN = 60_000;
const T0 = new Date('2026-03-02T10:00:00.000Z');
let f: IncidentFixture;
let agent: { id: string };
let ids: { a: string; b: string; c: string };
const key: Actor = { ref: `apikey:${newId('key')}`, kind: 'apikey', purposes: ['account', 'support'] };
const SOURCE = '203.0.113.7';

beforeAll(async () => {
  f = await incidentFixture({ start: T0, sources: async (source) => (source === SOURCE ? [`staff:${agent.id}`] : []) });
  agent = await f.member('support_agent');
  ids = { a: await f.customer(), b: await f.customer(), c: await f.customer() };
  f.clock.set(new Date(T0.getTime() + 10 * MIN));
  await f.read(agent.id, 'support', ids.a);
  // Beside it, another actor reads A in the same minutes: not the agent's blast radius.
  await f.vault.readCustomer({ actor: key, purpose: 'account', requestId: 'r-key' }, ids.a);
  f.clock.set(new Date(T0.getTime() + 50 * MIN));
  await f.read(agent.id, 'support', ids.b);
  await f.read(agent.id, 'support', ids.b);
  // A purpose beyond the role: refused, audited, not a touch.
  expect(await codeOf(f.read(agent.id, 'account', ids.a))).toBe('POLICY_PURPOSE_NOT_ALLOWED');
  await f.vault.create({ actor: key, purpose: 'account', requestId: 'r-key2' }, 'orders', ids.b, {
    number: 'SO-1',
    placed_at: '2026-03-02T10:50:00Z',
    currency: 'EUR',
    total: '10.00',
    status: 'paid',
  });
  f.clock.set(new Date(T0.getTime() + 120 * MIN));
  await f.read(agent.id, 'support', ids.c);
  f.clock.set(new Date(T0.getTime() + 180 * MIN));
});
afterAll(() => f.close());

const window = { from: new Date(T0.getTime() + 10 * MIN).toISOString(), to: new Date(T0.getTime() + 120 * MIN).toISOString() };

describe(`blast radius (${TEST_DIALECT})`, () => {
  it("lists the staff member's customers and fields within the window: the read at its start counts, the one at its end does not", async () => {
    const officer = await f.officer();
    const incident = await f.incidents.open(officer, { title: 'Agent account used from abroad', severity: 'high', scope: { actor: { kind: 'staff', id: agent.id }, ...window } });
    const r = await f.incidents.blastRadius(officer, incident.id);
    expect(r.actors).toEqual([`staff:${agent.id}`]);
    expect(r.customers.map((c) => c.customer_id)).toEqual([ids.a, ids.b].sort());
    const byId = new Map(r.customers.map((c) => [c.customer_id, c]));
    expect(byId.get(ids.a)).toMatchObject({ entries: 1, records: 1, first_at: window.from });
    expect(byId.get(ids.b)).toMatchObject({ entries: 2, records: 1 });
    expect(byId.has(ids.c)).toBe(false);
    // Support sees email and phone masked, the name in clear, no date of birth.
    const fields = Object.fromEntries(r.fields.map((x) => [`${x.collection}.${x.field}`, x]));
    expect(Object.keys(fields).sort()).toEqual(['customers.email', 'customers.name', 'customers.phone']);
    expect(fields['customers.email']).toMatchObject({ category: 'contact', entries: 3, customers: 2, touches: { clear: 0, masked: 3, not_released: 0, written: 0 }, decision: 'masked', art34_3_a: false });
    expect(fields['customers.name']).toMatchObject({ category: 'identity', touches: { clear: 3 }, decision: 'exposed', reason: 'read_in_clear' });
    expect(r.categories.map((c) => [c.category, c.customers, c.decision])).toEqual([
      ['contact', 2, 'masked'],
      ['identity', 2, 'exposed'],
    ]);
    expect(r.totals).toMatchObject({ touching_entries: 3, customers: 2, records: 2, customers_exposed: 2, customers_art34_3_a: 0 });
    expect(r.totals.refused_entries).toBeGreaterThanOrEqual(1);
    expect(r.actions).toContainEqual({ action: 'vault.read', outcome: 'denied', entries: 1 });
    expect(byId.get(ids.a)!.exposed_fields).toEqual(['customers.email', 'customers.name', 'customers.phone']);
    expect(r.cards.involved).toBe(false);

    // A window that ends one millisecond later takes the third customer in.
    const wider = await f.incidents.blastRadius(officer, incident.id, { to: new Date(Date.parse(window.to) + 1).toISOString() });
    expect(wider.customers.map((c) => c.customer_id).sort()).toEqual([ids.a, ids.b, ids.c].sort());
  });

  it("an API key's reads in clear and its writes: what it only wrote is not exposed", async () => {
    const keyId = key.ref.slice('apikey:'.length);
    const incident = await f.incidents.open(CLI_OPERATOR, { title: 'Storefront key leaked in a public repository', severity: 'critical' });
    const r = await f.incidents.blastRadius(CLI_OPERATOR, incident.id, { actor_kind: 'apikey', actor_id: keyId, ...window });
    const byId = new Map(r.customers.map((c) => [c.customer_id, c]));
    expect([...byId.keys()].sort()).toEqual([ids.a, ids.b].sort());
    expect(byId.get(ids.a)).toMatchObject({ art34_3_a: false, exposed_fields: ['customers.date_of_birth', 'customers.email', 'customers.name', 'customers.phone'] });
    // B: an order the key wrote, never read back.
    expect(byId.get(ids.b)).toMatchObject({ art34_3_a: true, exposed_fields: [] });
    const total = r.fields.find((x) => x.collection === 'orders' && x.field === 'total')!;
    expect(total).toMatchObject({ touches: { written: 1 }, decision: 'protected', reason: 'written_only', modified: true });
    expect(r.totals).toMatchObject({ customers: 2, customers_exposed: 1, customers_art34_3_a: 1 });
  });

  it('resolves a source address through the injected resolver, and refuses a source without one', async () => {
    const incident = await f.incidents.open(CLI_OPERATOR, { title: 'Logins from a hosting range', severity: 'medium' });
    const r = await f.incidents.blastRadius(CLI_OPERATOR, incident.id, { actor_kind: 'source', actor_id: SOURCE, ...window });
    expect(r.actor).toEqual({ kind: 'source', id: SOURCE });
    expect(r.actors).toEqual([`staff:${agent.id}`]);
    expect(r.totals.customers).toBe(2);
    const bare = createIncidentService({ ...f.deps, sources: undefined });
    expect(await codeOf(bare.blastRadius(CLI_OPERATOR, incident.id, { actor_kind: 'source', actor_id: SOURCE, ...window }))).toBe('INCIDENTS_SOURCE_UNRESOLVED');
    expect(await codeOf(f.incidents.blastRadius(CLI_OPERATOR, incident.id, { actor_kind: 'source', actor_id: 'not-an-address', ...window }))).toBe('INCIDENTS_INVALID');
    expect(await codeOf(f.incidents.blastRadius(CLI_OPERATOR, incident.id))).toBe('INCIDENTS_SCOPE_REQUIRED');
  });

  it('is for incidents.manage only; every reading and every refusal is audited', async () => {
    const officer = await f.officer();
    const privacy = await f.member('privacy_officer');
    const incident = await f.incidents.open(officer, { title: 'Scope check', severity: 'low', scope: { actor: { kind: 'staff', id: agent.id }, ...window } });
    const asPrivacy = { kind: 'staff' as const, memberId: privacy.id, mfaVerifiedAt: null };
    expect(await codeOf(f.incidents.blastRadius(asPrivacy, incident.id))).toBe('STAFF_PERMISSION_DENIED');
    expect(await codeOf(f.incidents.get(asPrivacy, incident.id))).toBe('STAFF_PERMISSION_DENIED');
    await f.incidents.blastRadius(officer, incident.id);
    const entries = await f.db
      .selectFrom('audit_log')
      .select(['actor', 'outcome', 'fields'])
      .where('action', '=', 'incidents.affected_read')
      .where('record_id', '=', incident.id)
      .orderBy('id')
      .execute();
    expect(entries).toEqual([
      { actor: `staff:${privacy.id}`, outcome: 'denied', fields: '[]' },
      { actor: `staff:${officer.id}`, outcome: 'success', fields: '["customers"]' },
    ]);
  });

  it("reads the audit log through its (actor, at) index", async () => {
    const q = activityQuery(f.db, { actors: ['staff:x'], ...window }).compile();
    if (TEST_DIALECT === 'sqlite') {
      const rows = await f.store.read<{ detail: string }>(`EXPLAIN QUERY PLAN ${q.sql}`, q.parameters);
      expect(rows.map((r) => r.detail).join('\n')).toContain('audit_log_actor_at');
    } else {
      const plan = await f.db.connection().execute(async (conn) => {
        await sql`SET enable_seqscan = off`.execute(conn);
        try {
          return (await conn.executeQuery<{ 'QUERY PLAN': string }>({ ...q, sql: `EXPLAIN ${q.sql}` })).rows;
        } finally {
          await sql`RESET enable_seqscan`.execute(conn);
        }
      });
      expect(plan.map((r) => r['QUERY PLAN']).join('\n')).toContain('audit_log_actor_at');
    }
  });
});
