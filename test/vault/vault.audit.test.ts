import { sql } from 'kysely';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyEntryProof, type EntryProof } from '../../src/modules/audit/browser-verify.ts';
import { testApp, type TestApp } from '../support/app.ts';
import { ALL_PURPOSES, apiKey, call, census, expectNoValues, person, personalStrings, seed, UPPER_SNAKE } from './helpers.ts';

/**
 * The audit trail as the API produces it: every read and write appends exactly one entry naming
 * the API key, the action, the field names (never values), the purpose and the request id the
 * caller saw; a customer's access log lists only entries about that customer; and the log fails
 * closed — when the entry cannot be written, a read releases nothing and a write stores nothing
 * (DESIGN.md, data flow of a read; PCI DSS 4.0.1 10.2.1, 10.2.2; GDPR Art. 5(2)).
 */
interface LogEntry {
  id: number;
  at: string;
  actor: string;
  action: string;
  collection: string | null;
  record_id: string | null;
  fields: string[];
  purpose: string | null;
  outcome: string;
  request_id: string | null;
}

describe('vault audit trail through the API', () => {
  let t: TestApp;
  let key: { auth: string; id: string };
  beforeAll(async () => {
    t = await testApp();
    key = await apiKey(t, ALL_PURPOSES);
  });
  afterAll(async () => t.close());

  const entriesFor = async (res: LightMyRequestResponse) => {
    const requestId = res.headers['x-request-id'];
    expect(typeof requestId).toBe('string');
    return t.runtime.store.db.selectFrom('audit_log').selectAll().where('request_id', '=', String(requestId)).execute();
  };
  const accessLog = async (customerId: string, query = '') => {
    const res = await call(t, { url: `/v1/customers/${customerId}/access-log${query}`, auth: key.auth, purpose: 'support' });
    expect(res.statusCode, res.body).toBe(200);
    return { res, data: res.json<{ data: LogEntry[] }>().data };
  };

  it('every read and write appends exactly one entry: actor, action, fields, purpose, request id', async () => {
    const p = person('audit');
    const actor = `apikey:${key.id}`;
    const steps: { res: () => Promise<LightMyRequestResponse>; expect: (id: string) => Record<string, unknown> }[] = [];
    let id = '';
    let orderId = '';
    const created = await call(t, { method: 'POST', url: '/v1/customers', auth: key.auth, purpose: 'account', payload: p.customer });
    expect(created.statusCode).toBe(201);
    id = created.json<{ id: string }>().id;
    const [createEntry, ...extra] = await entriesFor(created);
    expect(extra).toEqual([]);
    expect(createEntry).toMatchObject({ actor, action: 'vault.create', subject_id: id, collection: 'customers', record_id: id, purpose: 'account', outcome: 'success' });
    expect(JSON.parse(createEntry!.fields)).toEqual(['date_of_birth', 'email', 'locale', 'name', 'phone']);

    const order = await call(t, { method: 'POST', url: `/v1/customers/${id}/orders`, auth: key.auth, purpose: 'account', payload: p.order });
    orderId = order.json<{ id: string }>().id;
    steps.push(
      {
        res: () => call(t, { method: 'POST', url: `/v1/customers/${id}/addresses`, auth: key.auth, purpose: 'account', payload: p.address }),
        expect: () => ({ action: 'vault.create', collection: 'addresses', purpose: 'account', fields: ['city', 'country', 'line1', 'line2', 'postal_code', 'region'] }),
      },
      {
        res: () => call(t, { method: 'PATCH', url: `/v1/customers/${id}`, auth: key.auth, purpose: 'account', payload: { name: 'Renamed' } }),
        expect: () => ({ action: 'vault.update', collection: 'customers', record_id: id, purpose: 'account', fields: ['name'] }),
      },
      {
        res: () => call(t, { url: `/v1/customers/${id}`, auth: key.auth, purpose: 'fulfilment' }),
        expect: () => ({ action: 'vault.read', record_id: id, purpose: 'fulfilment' }),
      },
      {
        res: () => call(t, { url: `/v1/customers?email=${encodeURIComponent(p.customer.email)}`, auth: key.auth, purpose: 'support' }),
        expect: () => ({ action: 'vault.lookup', record_id: id, purpose: 'support' }),
      },
      {
        res: () => call(t, { url: `/v1/customers/${id}/orders`, auth: key.auth, purpose: 'fulfilment' }),
        expect: () => ({ action: 'vault.read', collection: 'orders', purpose: 'fulfilment' }),
      },
      {
        res: () => call(t, { url: `/v1/orders/${orderId}`, auth: key.auth, purpose: 'legal_obligation' }),
        expect: () => ({ action: 'vault.read', collection: 'orders', record_id: orderId, purpose: 'legal_obligation' }),
      },
      {
        res: () => call(t, { url: `/v1/customers/${id}/access-log`, auth: key.auth, purpose: 'support' }),
        expect: () => ({ action: 'audit.read', record_id: id, purpose: 'support', fields: [] }),
      },
    );
    expect((await entriesFor(order))[0]).toMatchObject({ action: 'vault.create', collection: 'orders', subject_id: id, record_id: orderId });
    for (const step of steps) {
      const res = await step.res();
      expect(res.statusCode, res.body).toBeLessThan(300);
      const entries = await entriesFor(res);
      expect(entries, `one entry for ${JSON.stringify(step.expect(id))}`).toHaveLength(1);
      const e = entries[0]!;
      const { fields, ...rest } = step.expect(id);
      expect(e).toMatchObject({ actor, subject_id: id, outcome: 'success', ...rest });
      if (fields !== undefined) expect(JSON.parse(e.fields)).toEqual(fields);
    }
  });

  it('a read records the field names it released, and only those', async () => {
    const s = await seed(t, key.auth);
    const fulfilment = await call(t, { url: `/v1/customers/${s.id}`, auth: key.auth, purpose: 'fulfilment' });
    const [read] = await entriesFor(fulfilment);
    const fields = JSON.parse(read!.fields) as string[];
    expect(fields).toEqual(expect.arrayContaining(['email', 'name', 'phone', 'addresses.line1']));
    expect(fields).not.toContain('date_of_birth');
    const marketing = await call(t, { url: `/v1/customers/${s.id}`, auth: key.auth, purpose: 'marketing' });
    const [nothing] = await entriesFor(marketing);
    expect(JSON.parse(nothing!.fields)).toEqual([]);
  });

  it("the request id in an entry is the server's, never one the client sent", async () => {
    const s = await seed(t, key.auth);
    const res = await call(t, { url: `/v1/customers/${s.id}`, auth: key.auth, purpose: 'support', headers: { 'x-request-id': 'forged-request-id' } });
    expect(res.headers['x-request-id']).not.toBe('forged-request-id');
    expect(await entriesFor(res)).toHaveLength(1);
    const forged = await t.runtime.store.db.selectFrom('audit_log').select('id').where('request_id', '=', 'forged-request-id').execute();
    expect(forged).toEqual([]);
  });

  it('GET access-log lists the entries about the customer, newest first, with names but never values', async () => {
    const s = await seed(t, key.auth);
    const read = await call(t, { url: `/v1/customers/${s.id}`, auth: key.auth, purpose: 'account' });
    const { res, data } = await accessLog(s.id);
    expect(data.map((e) => e.request_id)).toContain(read.headers['x-request-id']);
    expect(data[0]).toMatchObject({ action: 'audit.read', request_id: res.headers['x-request-id'] });
    expect(data.map((e) => e.id)).toEqual([...data.map((e) => e.id)].sort((a, b) => b - a));
    expect(new Set(data.map((e) => e.action))).toEqual(new Set(['vault.create', 'vault.read', 'audit.read']));
    for (const e of data) expect(e.actor).toBe(`apikey:${key.id}`);
    expectNoValues(res, [...personalStrings(s.p), s.p.customer.date_of_birth, s.p.order.number, s.p.order.total]);
  });

  it("a customer's access log never shows another customer's entries", async () => {
    const a = await seed(t, key.auth, person('tenant-a'));
    const b = await seed(t, key.auth, person('tenant-b'));
    const bRequests: string[] = [];
    const touchB = [
      call(t, { url: `/v1/customers/${b.id}`, auth: key.auth, purpose: 'account' }),
      call(t, { url: `/v1/orders/${b.orderId}`, auth: key.auth, purpose: 'account' }),
      call(t, { url: `/v1/customers/${b.id}/orders`, auth: key.auth, purpose: 'account' }),
      call(t, { url: `/v1/customers?email=${encodeURIComponent(b.p.customer.email)}`, auth: key.auth, purpose: 'account' }),
      call(t, { method: 'PATCH', url: `/v1/customers/${b.id}`, auth: key.auth, payload: { locale: 'fr-FR' } }),
      call(t, { url: `/v1/customers/${b.id}/access-log`, auth: key.auth, purpose: 'account' }),
    ];
    for (const r of await Promise.all(touchB)) {
      expect(r.statusCode, r.body).toBe(200);
      bRequests.push(String(r.headers['x-request-id']));
    }
    const own = new Set([a.id, a.addressId, a.orderId]);
    const { res, data } = await accessLog(a.id, '?limit=500');
    for (const e of data) {
      expect(e.request_id === null || !bRequests.includes(e.request_id), `B's request ${e.request_id} in A's log`).toBe(true);
      if (e.record_id !== null) expect(own.has(e.record_id), `${e.record_id} in A's log`).toBe(true);
    }
    expectNoValues(res, [b.id, b.orderId, b.addressId]);
    // A cursor taken from B's log does not open B's entries through A's log.
    const bLog = await accessLog(b.id, '?limit=500');
    const newestB = Math.max(...bLog.data.map((e) => e.id));
    const paged = await accessLog(a.id, `?before=${newestB + 1}&limit=500`);
    for (const e of paged.data) if (e.record_id !== null) expect(own.has(e.record_id)).toBe(true);
    // Ids of other kinds do not name an access log.
    for (const wrong of [a.orderId, a.addressId]) {
      const r = await call(t, { url: `/v1/customers/${wrong}/access-log`, auth: key.auth, purpose: 'account' });
      expect(r.statusCode).toBe(400);
    }
  });

  it('every access-log entry proves its place in the signed log, and an altered entry, proof or head does not verify', async () => {
    const created = await call(t, { method: 'POST', url: '/v1/customers', auth: key.auth, purpose: 'account', payload: person('proof').customer });
    const id = created.json<{ id: string }>().id;
    await call(t, { url: `/v1/customers/${id}`, auth: key.auth, purpose: 'support' });
    await t.runtime.audit.chainPending(); // admits the entries and signs a head over them
    await call(t, { url: `/v1/customers/${id}`, auth: key.auth, purpose: 'fulfilment' }); // after the head: no proof yet
    const res = await call(t, { url: `/v1/customers/${id}/access-log`, auth: key.auth, purpose: 'support' });
    expect(res.statusCode, res.body).toBe(200);
    type Proven = Omit<LogEntry, 'request_id'> & { subject_id: string | null; withheld_hash: string; proof: EntryProof['proof'] | null };
    const body = res.json<{ data: Proven[]; head: EntryProof['head'] | null }>();
    const keys = (await call(t, { url: '/v1/keys/audit' })).json<EntryProof['keys']>();
    expect(body.head).not.toBeNull();
    const head = body.head!;
    const proven = body.data.filter((e) => e.proof !== null);
    const waiting = body.data.filter((e) => e.proof === null);
    expect(proven.map((e) => e.action).sort()).toEqual(['vault.create', 'vault.read']);
    expect(waiting.map((e) => e.purpose)).toContain('fulfilment');
    const check = (e: Proven, h = head) => {
      const { proof, ...shown } = e;
      const { request_id: _r, ...entry } = shown as Proven & { request_id?: unknown };
      return verifyEntryProof({ entry: entry as EntryProof['entry'], proof: proof!, head: h, keys });
    };
    for (const e of proven) expect(await check(e)).toBe(true);
    const e = proven[0]!;
    expect(await check({ ...e, purpose: 'marketing' })).toBe(false);
    expect(await check({ ...e, fields: [...e.fields, 'iban'] })).toBe(false);
    expect(await check({ ...e, withheld_hash: '0'.repeat(64) })).toBe(false);
    expect(await check({ ...e, proof: { ...e.proof!, leaf_index: e.proof!.leaf_index + 1 } })).toBe(false);
    expect(await check(e, { ...head, root_hash: '0'.repeat(64) })).toBe(false);
  });
});

interface Outage {
  name: string;
  on(t: TestApp): Promise<void>;
  off(t: TestApp): Promise<void>;
}

const outages: Outage[] = [
  {
    name: 'the audit_log table is gone (renamed)',
    on: async (t) => void (await sql`ALTER TABLE audit_log RENAME TO audit_log_offline`.execute(t.runtime.store.db)),
    off: async (t) => void (await sql`ALTER TABLE audit_log_offline RENAME TO audit_log`.execute(t.runtime.store.db)),
  },
  {
    name: 'a trigger rejects every audit insert',
    on: async (t) => {
      const db = t.runtime.store.db;
      if (t.runtime.store.dialect === 'sqlite') {
        await sql`CREATE TRIGGER audit_refuse BEFORE INSERT ON audit_log BEGIN SELECT RAISE(ABORT, 'audit refused'); END`.execute(db);
      } else {
        await sql`CREATE FUNCTION audit_refuse() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RAISE EXCEPTION 'audit refused'; END $$`.execute(db);
        await sql`CREATE TRIGGER audit_refuse BEFORE INSERT ON audit_log FOR EACH ROW EXECUTE FUNCTION audit_refuse()`.execute(db);
      }
    },
    off: async (t) => {
      const db = t.runtime.store.db;
      if (t.runtime.store.dialect === 'sqlite') await sql`DROP TRIGGER audit_refuse`.execute(db);
      else {
        await sql`DROP TRIGGER audit_refuse ON audit_log`.execute(db);
        await sql`DROP FUNCTION audit_refuse()`.execute(db);
      }
    },
  },
];

describe.each(outages)('the audit log fails closed when $name', (outage) => {
  let t: TestApp;
  let auth: string;
  let s: Awaited<ReturnType<typeof seed>>;
  beforeAll(async () => {
    t = await testApp();
    auth = (await apiKey(t, ALL_PURPOSES)).auth;
    s = await seed(t, auth, person('outage'));
  });
  afterAll(async () => t.close());

  const expectRefused = (res: LightMyRequestResponse, values: string[]) => {
    expect(res.statusCode, res.body).toBeGreaterThanOrEqual(500);
    const body = res.json<{ error: { code: string; request_id: string } }>();
    expect(body.error.code).toMatch(UPPER_SNAKE);
    expect(body.error.code).not.toBe('INTERNAL_ERROR');
    expect(body.error.request_id).toBe(res.headers['x-request-id']);
    expectNoValues(res, values);
  };

  it('reads release nothing and writes store nothing; service resumes when the log is back', async () => {
    const values = [...personalStrings(s.p), s.p.customer.date_of_birth];
    const before = await census(t, ['records', 'blind_indexes', 'subject_keys', 'audit_log']);
    await outage.on(t);
    try {
      const reads = [
        `/v1/customers/${s.id}`,
        `/v1/customers?email=${encodeURIComponent(s.p.customer.email)}`,
        `/v1/customers?phone=${encodeURIComponent(s.p.customer.phone)}`,
        `/v1/customers/${s.id}/orders`,
        `/v1/orders/${s.orderId}`,
        `/v1/customers/${s.id}/access-log`,
      ];
      for (const url of reads) for (const purpose of ['account', 'support']) expectRefused(await call(t, { url, auth, purpose }), values);
      const q = person('outage-write');
      const writes = [
        { method: 'POST' as const, url: '/v1/customers', payload: q.customer },
        { method: 'PATCH' as const, url: `/v1/customers/${s.id}`, payload: { name: q.customer.name, email: q.customer.email } },
        { method: 'POST' as const, url: `/v1/customers/${s.id}/addresses`, payload: q.address },
        { method: 'POST' as const, url: `/v1/customers/${s.id}/orders`, payload: q.order },
      ];
      for (const w of writes) expectRefused(await call(t, { ...w, auth, purpose: 'account' }), [...values, ...personalStrings(q)]);
    } finally {
      await outage.off(t);
    }
    expect(await census(t, ['records', 'blind_indexes', 'subject_keys', 'audit_log'])).toEqual(before);
    const read = await call(t, { url: `/v1/customers?email=${encodeURIComponent(s.p.customer.email)}`, auth, purpose: 'account' });
    expect(read.statusCode).toBe(200);
    expect(read.json<{ data: { id: string; name: string }[] }>().data).toMatchObject([{ id: s.id, name: s.p.customer.name }]);
  });
});
