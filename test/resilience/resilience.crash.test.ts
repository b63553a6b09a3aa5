import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DIALECT, type TestDatabase } from '../support/store.ts';
import { apiClient, idOf, type ApiClient } from './api-client.ts';
import { CHILD_TIMEOUT, childEnv, createKey, killChildren, newDatabase, rootKey, runCli, sleep, startServer, type ServerChild } from './harness.ts';
import { rawDb } from './raw-db.ts';

/**
 * Nothing lost: a server is killed with SIGKILL in the middle of a write load (creates, PATCHes,
 * addresses, orders from concurrent clients) and restarted on the same database. Every write that
 * was acknowledged (2xx received) must read back with its values; nothing half-written may be
 * visible (a record without its data key or its audit entry, a blind index without its record,
 * an order without its customer, a data key without its customer); and the audit log verifies.
 */
const CLIENTS = 12;
/**
 * The kill comes at a random point of the load: after a random number of acknowledged writes, or
 * after KILL_AFTER_MS once at least MIN_ACKED writes were acknowledged (a slow machine), and in
 * any case after GIVE_UP_MS (the load is bounded by count and by time).
 */
const KILL_AFTER_WRITES = 80 + Math.floor(Math.random() * 120);
const KILL_AFTER_MS = 6_000;
const MIN_ACKED = 30;
const GIVE_UP_MS = 40_000;

type Fields = Record<string, unknown>;
interface Customer {
  id: string;
  acked: Fields;
  /** A PATCH sent but not acknowledged: its values may or may not have landed. */
  inFlight?: Fields;
  addresses: Map<string, Fields>;
}

describe(`crash under write load (${TEST_DIALECT})`, { timeout: CHILD_TIMEOUT }, () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  let key: string;

  beforeAll(async () => {
    db = await newDatabase();
    env = childEnv(db, { CUSTOS_ROOT_KEY: rootKey(), CUSTOS_LOG_LEVEL: 'warn' });
    key = await createKey(env, ['account', 'support']);
  }, CHILD_TIMEOUT);
  afterAll(async () => {
    await killChildren();
    await db.cleanup();
  });

  it('keeps every acknowledged write and shows nothing half-written after SIGKILL', async () => {
    const server = await startServer(env);
    const customers = new Map<string, Customer>();
    const orders = new Map<string, { customerId: string; values: Fields }>();
    const unexpected: string[] = [];
    let acked = 0;
    let killed = false;
    let phoneSeq = 0;

    const worker = async (api: ApiClient, w: number) => {
      for (let n = 0; !killed; n++) {
        const phone = `+4930${String(w * 100_000 + ++phoneSeq).padStart(8, '0')}`;
        const values: Fields = {
          email: `crash-${w}-${n}@load.example`,
          name: `Crash Tester ${w}-${n}`,
          phone,
          date_of_birth: `19${String(50 + (n % 50))}-0${1 + (n % 9)}-1${n % 10}`,
          locale: 'de-DE',
        };
        const created = await api.post('/v1/customers', values);
        if (!record(created.status, 201, 'create customer')) return;
        const c: Customer = { id: idOf(created), acked: values, addresses: new Map() };
        customers.set(c.id, c);
        acked++;
        if (killed) return;

        const patch: Fields = { name: `Renamed Tester ${w}-${n}`, phone: `+4940${String(w * 100_000 + ++phoneSeq).padStart(8, '0')}` };
        c.inFlight = patch;
        const patched = await api.patch(`/v1/customers/${c.id}`, patch);
        if (!record(patched.status, 200, 'patch customer')) return;
        c.acked = { ...c.acked, ...patch };
        delete c.inFlight;
        acked++;
        if (killed) return;

        const address: Fields = { line1: `Lastweg ${n}`, city: 'Berlin', postal_code: `1${String(w).padStart(2, '0')}${String(n % 100).padStart(2, '0')}`, country: 'DE' };
        const adr = await api.post(`/v1/customers/${c.id}/addresses`, address);
        if (!record(adr.status, 201, 'create address')) return;
        c.addresses.set(idOf(adr), address);
        acked++;

        for (let k = 0; k < 2 && !killed; k++) {
          const order: Fields = {
            number: `ORD-${w}-${n}-${k}`,
            placed_at: '2025-03-04T05:06:07.000Z',
            currency: 'EUR',
            total: `${10 + k}.${String(n % 100).padStart(2, '0')}`,
            status: 'paid',
            items: [{ sku: `SKU-${w}-${n}-${k}`, name: 'Load item', quantity: 1 + k, unit_price: '5.50' }],
            shipping_address: { line1: `Lastweg ${n}`, city: 'Berlin', postal_code: '10115', country: 'DE' },
          };
          const ord = await api.post(`/v1/customers/${c.id}/orders`, order);
          if (!record(ord.status, 201, 'create order')) return;
          orders.set(idOf(ord), { customerId: c.id, values: order });
          acked++;
        }
      }
    };
    // A request either succeeds as expected or fails at the socket (status 0) after the kill.
    const record = (status: number, want: number, what: string): boolean => {
      if (status === want) return true;
      if (status !== 0 || !killed) unexpected.push(`${what}: ${status}`);
      return false;
    };

    const clients = Array.from({ length: CLIENTS }, (_, w) => worker(apiClient(server.url, key), w));
    const started = Date.now();
    const due = () => {
      const elapsed = Date.now() - started;
      return acked >= KILL_AFTER_WRITES || (elapsed >= KILL_AFTER_MS && acked >= MIN_ACKED) || elapsed >= GIVE_UP_MS;
    };
    while (!due() && unexpected.length === 0) await sleep(5);
    killed = true;
    const exit = await server.stop('SIGKILL');
    await Promise.all(clients);
    expect(exit.signal).toBe('SIGKILL');
    expect(unexpected, `server log:\n${server.output().slice(-4000)}`).toEqual([]);
    expect(acked).toBeGreaterThanOrEqual(MIN_ACKED);

    // The CLI verifies the log as the crash left it (it links what was pending first).
    const afterCrash = await runCli(['audit', 'verify'], env);
    expect(afterCrash.stdout + afterCrash.stderr).toContain('intact');
    expect(afterCrash.code).toBe(0);

    const again: ServerChild = await startServer(env);
    const api = apiClient(again.url, key);

    for (const c of customers.values()) {
      const read = await api.get(`/v1/customers/${c.id}`, 'account');
      expect(read.status, read.text).toBe(200);
      const body = read.body as Fields & { addresses: Fields[] };
      const candidates = c.inFlight === undefined ? [c.acked] : [c.acked, { ...c.acked, ...c.inFlight }];
      const got = Object.fromEntries(Object.keys(c.acked).map((k) => [k, body[k]]));
      expect(candidates, `customer ${c.id}`).toContainEqual(got);
      for (const [adrId, values] of c.addresses) expect(body.addresses).toContainEqual(expect.objectContaining({ id: adrId, ...values }));
    }
    for (const [id, o] of orders) {
      const read = await api.get(`/v1/orders/${id}`, 'account');
      expect(read.status, read.text).toBe(200);
      expect(read.body).toMatchObject({ id, customer_id: o.customerId, ...o.values });
    }
    // The blind index agrees with the records: a lookup finds exactly the acknowledged customer.
    for (const c of [...customers.values()].slice(0, 20)) {
      const found = await api.get(`/v1/customers?email=${encodeURIComponent(String(c.acked.email))}`, 'account');
      expect(found.status).toBe(200);
      expect((found.body as { data: { id: string }[] }).data.map((d) => d.id)).toEqual([c.id]);
    }

    const raw = await rawDb(db);
    try {
      const none = async (what: string, sql: string) => expect(await raw.query(sql), what).toEqual([]);
      await none('records without a data key', 'SELECT r.id FROM records r LEFT JOIN subject_keys k ON k.subject_id = r.subject_id WHERE k.subject_id IS NULL');
      await none('data keys without a customer', "SELECT k.subject_id FROM subject_keys k LEFT JOIN records r ON r.id = k.subject_id AND r.collection = 'customers' WHERE r.id IS NULL");
      await none('blind indexes without a record', 'SELECT b.record_id FROM blind_indexes b LEFT JOIN records r ON r.id = b.record_id WHERE r.id IS NULL');
      await none(
        'orders or addresses without their customer',
        "SELECT o.id FROM records o LEFT JOIN records c ON c.id = o.subject_id AND c.collection = 'customers' WHERE o.collection <> 'customers' AND c.id IS NULL",
      );
      await none(
        'records without their audit entry',
        "SELECT r.id FROM records r WHERE NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.record_id = r.id AND a.action = 'vault.create')",
      );
      await none(
        'customers without exactly one email and one phone index',
        "SELECT r.id FROM records r WHERE r.collection = 'customers' AND (SELECT COUNT(*) FROM blind_indexes b WHERE b.record_id = r.id) <> 2",
      );
      // Everything that did commit, acknowledged or not, reads back whole (no integrity failure).
      const all = await raw.query<{ id: string; collection: string }>('SELECT id, collection FROM records ORDER BY id');
      expect(all.length).toBeGreaterThanOrEqual(customers.size + orders.size);
      for (const r of all) {
        if (r.collection === 'addresses') continue;
        const path = r.collection === 'customers' ? `/v1/customers/${r.id}` : `/v1/orders/${r.id}`;
        const read = await api.get(path, 'account');
        expect(read.status, `${r.id}: ${read.text}`).toBe(200);
      }
    } finally {
      await raw.close();
    }

    expect((await again.stop('SIGTERM')).code).toBe(0);
    const verified = await runCli(['audit', 'verify'], env);
    expect(verified.stdout).toMatch(/^audit chain intact/);
    expect(verified.stdout).toMatch(/^audit tree intact: \d+ leaves/m);
    expect(verified.code).toBe(0);
  });
});
