import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyReceipt } from '../../src/modules/rights/receipt.ts';
import { browser, codeOf, customer, signIn, type AuthTest } from '../identity/helpers.ts';
import { personalStrings, seed } from '../vault/helpers.ts';
import { apiCall, rightsApp } from './helpers.ts';

/**
 * Erasure through the whole app, on SQLite and PostgreSQL: the plan from the inventory, held
 * fields re-sealed under a hold key only legal_obligation opens, the data key destroyed and the
 * records gone, the receipt signed, the account closed, and a run killed midway that finishes.
 */
let t: AuthTest;
let rights: string;
let shop: string;
let call: ReturnType<typeof apiCall>;
beforeAll(async () => {
  ({ t, rights, shop } = await rightsApp());
  call = apiCall(t);
});
afterAll(async () => t.close());

interface View {
  id: string;
  state: string;
  erasure_stage: string | null;
  customer_id: string;
  receipt: string | null;
}
interface Plan {
  bookkeeping_country: string;
  erase: { collection: string; records: number; fields: string[] }[];
  hold: { collection: string; record_id: string; fields: string[]; until: string; ground: string }[];
}

const api = (method: 'GET' | 'POST' | 'DELETE', url: string, auth: string, headers: Record<string, string> = {}) => call(method, url, auth, undefined, headers);
/** The request once the erasure running behind the answer has finished. */
async function finished(id: string): Promise<View> {
  await t.runtime.erasure.idle();
  return (await api('GET', `/v1/rights/requests/${id}`, rights)).json<View>();
}
const SYSTEM = { actor: { ref: 'system:test', kind: 'system' as const, purposes: [] }, requestId: 'r1' };
const ORDER_HELD = ['billing_address', 'currency', 'items', 'number', 'placed_at', 'status', 'total'];

async function rawCounts(customerId: string, recordIds: string[]) {
  const db = t.runtime.store.db;
  const records = await db.selectFrom('records').select('id').where('subject_id', '=', customerId).execute();
  const indexes = await db.selectFrom('blind_indexes').select('record_id').where('record_id', 'in', recordIds).execute();
  const keys = await db.selectFrom('subject_keys').select('subject_id').where('subject_id', '=', customerId).execute();
  const held = await db.selectFrom('held_records').select('record_id').where('subject_id', '=', customerId).execute();
  return { records: records.length, indexes: indexes.length, keys: keys.length, held: held.length };
}

describe('the erasure plan', () => {
  it('holds the order fields with a legal_obligation use until the end of the year + 8 years (DE), erases the rest', async () => {
    const { id, orderId, addressId } = await seed(t, shop);
    const res = await api('GET', `/v1/customers/${id}/erasure-plan`, rights);
    expect(res.statusCode, res.body).toBe(200);
    const plan = res.json<Plan>();
    expect(plan.bookkeeping_country).toBe('DE');
    const order = plan.hold.find((h) => h.record_id === orderId);
    expect(order).toMatchObject({ collection: 'orders', fields: ORDER_HELD, until: '2034-12-31' });
    expect(order?.ground).toContain('§147 AO');
    // The name on the invoices is held as long as they are; contact data and addresses go now.
    expect(plan.hold.find((h) => h.record_id === id)).toMatchObject({ fields: ['name'], until: '2034-12-31' });
    expect(plan.hold.some((h) => h.record_id === addressId)).toBe(false);
    expect(plan.erase.find((e) => e.collection === 'customers')?.fields).toEqual(['date_of_birth', 'email', 'locale', 'phone', 'shopify_customer_id']);
    expect(plan.erase.find((e) => e.collection === 'orders')?.fields).toEqual(['shipping_address']);
  });

  it("follows the shop's bookkeeping country (FR: 10 years)", async () => {
    const fr = await rightsApp({ CUSTOS_BOOKKEEPING_COUNTRY: 'FR' });
    try {
      const { id, orderId } = await seed(fr.t, fr.shop);
      const plan = (await apiCall(fr.t)('GET', `/v1/customers/${id}/erasure-plan`, fr.rights)).json<Plan>();
      expect(plan.hold.find((h) => h.record_id === orderId)).toMatchObject({ until: '2036-12-31', ground: expect.stringContaining('L.123-22') });
    } finally {
      await fr.t.close();
    }
  });

  it('a key without the rights purpose cannot see an erasure plan', async () => {
    const { id } = await seed(t, shop);
    expect(codeOf(await api('GET', `/v1/customers/${id}/erasure-plan`, shop))).toBe('RIGHTS_PURPOSE_REQUIRED');
  });
});

describe('erasing a customer', () => {
  it('DELETE accepts at once and erases behind the answer: records, blind indexes and key gone, held fields kept under a hold key, receipt signed', async () => {
    const { id, p, orderId, addressId } = await seed(t, shop);
    const res = await api('DELETE', `/v1/customers/${id}`, rights);
    expect(res.statusCode, res.body).toBe(202);
    expect(res.json<View>()).toMatchObject({ state: 'in_progress', erasure_stage: 'accepted' });
    const view = await finished(res.json<View>().id);
    expect(view).toMatchObject({ state: 'completed', erasure_stage: 'shredded' });
    expect(await rawCounts(id, [id, orderId, addressId])).toEqual({ records: 0, indexes: 0, keys: 0, held: 2 });

    // A read of the erased customer is a 404 with a stable code.
    const read = await api('GET', `/v1/customers/${id}`, shop, { 'custos-purpose': 'account' });
    expect(read.statusCode).toBe(404);
    expect(codeOf(read)).toBe('VAULT_NOT_FOUND');

    // The receipt checks under the published key and says what is held until when.
    const keys = t.runtime.rootKeys;
    const claims = verifyReceipt(view.receipt!, [keys.receiptSigning]);
    expect(claims).toMatchObject({ sub: id, jti: view.id, held: expect.arrayContaining([expect.objectContaining({ record_id: orderId, until: '2034-12-31' })]) });
    const jwks = (await api('GET', '/v1/rights/receipt-keys', rights)).json<{ keys: { kid: string }[] }>();
    expect(jwks.keys[0]?.kid).toBe(keys.receiptSigning.keyId);

    // Held values open for legal_obligation only, and only the held fields.
    const held = await api('GET', `/v1/customers/${id}/held-records`, shop, { 'custos-purpose': 'legal_obligation' });
    expect(held.statusCode, held.body).toBe(200);
    const order = held.json<{ data: { record_id: string; values: Record<string, unknown> }[] }>().data.find((d) => d.record_id === orderId);
    expect(Object.keys(order!.values).sort()).toEqual(ORDER_HELD);
    expect(order!.values.number).toBe(p.order.number);
    expect(held.body).not.toContain(p.customer.email);
    expect(held.body).not.toContain(p.address.line2);
  });

  it('a held envelope copied onto another held record of the same customer is refused (held record swapped)', async () => {
    const { id, p } = await seed(t, shop);
    await finished((await api('DELETE', `/v1/customers/${id}`, rights)).json<View>().id);
    const db = t.runtime.store.db;
    const rows = await db.selectFrom('held_records').select(['record_id', 'data']).where('subject_id', '=', id).orderBy('record_id').execute();
    expect(rows).toHaveLength(2);
    // Held fields are one record envelope under the hold key (ADR 0003 format), nothing in clear.
    for (const row of rows) expect(JSON.parse(row.data)).toMatchObject({ s: expect.stringMatching(/^r1\.\d+\./), p: {} });
    await db.updateTable('held_records').set({ data: rows[0]!.data }).where('record_id', '=', rows[1]!.record_id).execute();
    const res = await api('GET', `/v1/customers/${id}/held-records`, shop, { 'custos-purpose': 'legal_obligation' });
    expect(res.statusCode).toBe(500);
    expect(codeOf(res)).toBe('VAULT_INTEGRITY_FAILURE');
    for (const s of personalStrings(p)) expect(res.body).not.toContain(s);
  });

  it('a key reading held records for another purpose than legal_obligation is refused (hold key misuse)', async () => {
    const { id, p } = await seed(t, shop);
    await finished((await api('DELETE', `/v1/customers/${id}`, rights)).json<View>().id);
    for (const purpose of ['account', 'fulfilment']) {
      const res = await api('GET', `/v1/customers/${id}/held-records`, shop, { 'custos-purpose': purpose });
      expect(res.statusCode).toBe(403);
      expect(codeOf(res)).toBe('VAULT_HOLD_PURPOSE_REQUIRED');
      for (const s of personalStrings(p)) expect(res.body).not.toContain(s);
    }
    const noPurpose = await api('GET', `/v1/customers/${id}/held-records`, shop);
    expect(codeOf(noPurpose)).toBe('VAULT_HOLD_PURPOSE_REQUIRED');
    const notScoped = await api('GET', `/v1/customers/${id}/held-records`, rights, { 'custos-purpose': 'legal_obligation' });
    expect(codeOf(notScoped)).toBe('POLICY_PURPOSE_NOT_ALLOWED');
  });

  it('an erasure accepted but not yet run releases nothing: reads for every purpose, lookups, orders (read during erasure)', async () => {
    const { id, p, orderId } = await seed(t, shop);
    // Accepted as it is recorded (verified), and nothing runs it: the window between the answer and the end.
    const filed = await t.runtime.rights.create(SYSTEM, { kind: 'erasure', customerId: id, channel: 'api_key', verification: 'api_key' });
    expect(filed.erasure_stage).toBe('accepted');
    const refused = [
      await api('GET', `/v1/customers/${id}`, shop, { 'custos-purpose': 'account' }),
      await api('GET', `/v1/customers/${id}`, shop, { 'custos-purpose': 'legal_obligation' }),
      await api('GET', `/v1/customers/${id}/orders`, shop, { 'custos-purpose': 'fulfilment' }),
      await api('GET', `/v1/orders/${orderId}`, shop, { 'custos-purpose': 'legal_obligation' }),
    ];
    for (const res of refused) {
      expect(res.statusCode, res.body).toBe(404);
      expect(codeOf(res)).toBe('POLICY_SUBJECT_ERASED');
      for (const s of personalStrings(p)) expect(res.body).not.toContain(s);
    }
    // A lookup by the email answers as for a stranger.
    const found = await api('GET', `/v1/customers?email=${encodeURIComponent(p.customer.email)}`, shop, { 'custos-purpose': 'account' });
    expect(found.json<{ data: unknown[] }>().data).toEqual([]);
    const entries = await t.runtime.audit.forSubject(id, { limit: 50 });
    expect(entries.filter((e) => e.action === 'rights.erasure.read_refused').length).toBeGreaterThanOrEqual(4);
    // The held fields open only through the held records, once re-sealed (none yet).
    const held = await api('GET', `/v1/customers/${id}/held-records`, shop, { 'custos-purpose': 'legal_obligation' });
    expect(held.json<{ data: unknown[] }>().data).toEqual([]);
  });

  it("an erasure accepted but not yet run releases nothing to the customer's own session nor through an export link made before", async () => {
    const email = await customer(t);
    const { jar } = await signIn(t, email);
    const customerId = (await browser(t, jar, 'GET', '/v1/me')).json<{ id: string }>().id;
    const access = (await browser(t, jar, 'POST', '/v1/me/rights-requests', { kind: 'access' })).json<{ export: { token: string } }>();
    await t.runtime.rights.create(SYSTEM, { kind: 'erasure', customerId, channel: 'customer', verification: 'customer_session' });
    const me = await browser(t, jar, 'GET', '/v1/me');
    expect(me.statusCode).toBe(404);
    expect(codeOf(me)).toBe('POLICY_SUBJECT_ERASED');
    expect(me.body).not.toContain(email);
    const download = await t.app.inject({ method: 'POST', url: '/v1/exports/download', payload: { token: access.export.token } });
    expect(codeOf(download)).toBe('RIGHTS_EXPORT_UNAVAILABLE');
    expect(download.body).not.toContain(email);
  });

  it('a customer whose erasure was accepted is left out of a consent-based audience; the audience still answers', async () => {
    const marketer = await t.bearer(['account', 'marketing']);
    const { id } = await seed(t, shop);
    const { id: other } = await seed(t, shop);
    for (const c of [id, other]) await call('POST', `/v1/customers/${c}/consents`, marketer, { purpose: 'marketing', granted: true, source: 'api', notice_version: 1 });
    await t.runtime.rights.create(SYSTEM, { kind: 'erasure', customerId: id, channel: 'api_key', verification: 'api_key' });
    const audience = await api('GET', '/v1/purposes/marketing/audience?limit=1000', marketer, { 'custos-purpose': 'marketing' });
    expect(audience.statusCode, audience.body).toBe(200);
    expect(audience.body).toContain(other);
    expect(audience.body).not.toContain(id);
  });

  it('an accepted erasure cannot be denied any more', async () => {
    const { id } = await seed(t, shop);
    const filed = await t.runtime.rights.create(SYSTEM, { kind: 'erasure', customerId: id, channel: 'api_key', verification: 'api_key' });
    const res = await t.app.inject({ method: 'POST', url: `/v1/rights/requests/${filed.id}/transitions`, headers: { authorization: rights }, payload: { to: 'denied', reason: 'tax audit pending' } });
    expect(codeOf(res)).toBe('RIGHTS_TRANSITION_INVALID');
  });

  it('erasing an already erased customer is idempotent: 202 with the same request and receipt', async () => {
    const { id } = await seed(t, shop);
    const first = await finished((await api('DELETE', `/v1/customers/${id}`, rights)).json<View>().id);
    const again = await api('DELETE', `/v1/customers/${id}`, rights);
    expect(again.statusCode).toBe(202);
    expect(again.json<View>()).toMatchObject({ id: first.id, state: 'completed', receipt: first.receipt });
    const rerun = await api('POST', `/v1/rights/requests/${first.id}/erasure`, rights);
    expect(rerun.json<View>()).toMatchObject({ id: first.id, receipt: first.receipt });
  });

  it('an erasure request cannot be marked completed without running it', async () => {
    const { id } = await seed(t, shop);
    const jarless = await t.app.inject({ method: 'POST', url: '/v1/rights/requests', headers: { authorization: rights }, payload: { kind: 'access', customer_id: id } });
    expect(codeOf(await api('POST', `/v1/rights/requests/${jarless.json<View>().id}/erasure`, rights))).toBe('RIGHTS_NOT_ERASURE');
    const created = await t.runtime.rights.create(
      { actor: { ref: 'system:test', kind: 'system', purposes: [] }, requestId: 'r1' },
      { kind: 'erasure', customerId: id, channel: 'staff', verification: 'in_person' },
    );
    const res = await t.app.inject({ method: 'POST', url: `/v1/rights/requests/${created.id}/transitions`, headers: { authorization: rights }, payload: { to: 'completed' } });
    expect(codeOf(res)).toBe('RIGHTS_ERASURE_NOT_RUN');
    expect((await rawCounts(id, [id])).records).toBeGreaterThan(0);
  });

  it('a customer erases their own account: session ended, account closed, the same email signs up again as a new customer', async () => {
    const email = await customer(t);
    const { jar } = await signIn(t, email);
    const me = await browser(t, jar, 'GET', '/v1/me');
    const oldId = me.json<{ id: string }>().id;
    const plan = await browser(t, jar, 'GET', '/v1/me/erasure-plan');
    expect(plan.json<Plan>().hold).toEqual([]);
    const res = await browser(t, jar, 'POST', '/v1/me/rights-requests', { kind: 'erasure' });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json<View>().state).toBe('in_progress');
    expect((await finished(res.json<View>().id)).state).toBe('completed');
    expect((await browser(t, jar, 'GET', '/v1/me')).statusCode).toBe(401);
    expect((await signIn(t, email)).res.statusCode).toBe(401);

    await customer(t, undefined, email);
    const { jar: again } = await signIn(t, email);
    const fresh = await browser(t, again, 'GET', '/v1/me');
    expect(fresh.statusCode).toBe(200);
    expect(fresh.json<{ id: string }>().id).not.toBe(oldId);
  });
});

describe('resumable', () => {
  const CHILD = fileURLToPath(new URL('./erasure-child.ts', import.meta.url));

  async function killAfter(requestId: string, stage: string): Promise<void> {
    const child = spawn(process.execPath, [CHILD, requestId, stage], { env: { ...process.env, ...t.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    await new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (d: Buffer) => {
        out += d.toString();
        if (out.includes(`stopped ${stage}`)) resolve();
      });
      child.on('exit', () => reject(new Error(`child ended before ${stage}: ${out} ${err}`)));
    });
    child.removeAllListeners('exit');
    const exited = new Promise((resolve) => child.on('exit', (_code, signal) => resolve(signal)));
    child.kill('SIGKILL');
    expect(await exited).toBe('SIGKILL');
  }

  it.each(['planned', 'held', 'account_closed', 'shredded'])('killed with SIGKILL after %s, run again, it finishes and nothing half-erased is readable', async (stage) => {
    const { id, orderId, addressId } = await seed(t, shop);
    const filed = await t.runtime.rights.create(
      { actor: { ref: 'system:test', kind: 'system', purposes: [] }, requestId: 'r1' },
      { kind: 'erasure', customerId: id, channel: 'api_key', verification: 'api_key' },
    );
    await killAfter(filed.id, stage);
    const midway = await rawCounts(id, [id, orderId, addressId]);
    // Either all of the customer is there (with its key) or none of it; and nothing is released either way.
    expect(midway.records === 0 ? midway.keys : midway.keys > 0).toBe(midway.records === 0 ? 0 : true);
    expect(codeOf(await api('GET', `/v1/customers/${id}`, shop, { 'custos-purpose': 'account' }))).toBe(midway.records === 0 ? 'VAULT_NOT_FOUND' : 'POLICY_SUBJECT_ERASED');

    const res = await api('DELETE', `/v1/customers/${id}`, rights);
    expect(res.statusCode, res.body).toBe(202);
    expect(res.json<View>().id).toBe(filed.id);
    expect(await finished(filed.id)).toMatchObject({ id: filed.id, state: 'completed' });
    expect(await rawCounts(id, [id, orderId, addressId])).toEqual({ records: 0, indexes: 0, keys: 0, held: 2 });
    const held = await api('GET', `/v1/customers/${id}/held-records`, shop, { 'custos-purpose': 'legal_obligation' });
    expect(held.json<{ data: unknown[] }>().data).toHaveLength(2);
  });

  it('killed with SIGKILL after held and never asked again, the erasure sweep finishes it once it made no progress for five minutes', async () => {
    const { id, orderId, addressId } = await seed(t, shop);
    const filed = await t.runtime.rights.create(SYSTEM, { kind: 'erasure', customerId: id, channel: 'api_key', verification: 'api_key' });
    await killAfter(filed.id, 'held');
    await t.runtime.erasure.resumeAccepted(); // too early: left to the run that may still be moving it
    expect((await rawCounts(id, [id, orderId, addressId])).keys).toBeGreaterThan(0);
    // Six minutes after the killed run's last step (the child ran on the real clock).
    const gap = Date.now() + 6 * 60_000 - t.clock.now().getTime();
    t.clock.advance(gap);
    try {
      expect(await t.runtime.erasure.resumeAccepted()).toBeGreaterThanOrEqual(1);
    } finally {
      t.clock.advance(-gap);
    }
    expect(await finished(filed.id)).toMatchObject({ state: 'completed', erasure_stage: 'shredded' });
    expect(await rawCounts(id, [id, orderId, addressId])).toEqual({ records: 0, indexes: 0, keys: 0, held: 2 });
  });
});
