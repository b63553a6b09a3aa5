import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browser, codeOf, customer, signIn, type AuthTest } from '../identity/helpers.ts';
import { seed } from '../vault/helpers.ts';
import { apiCall, rightsApp, staffSession } from './helpers.ts';

/**
 * Data-subject requests through the whole app, on SQLite and PostgreSQL: who may file and work
 * them, the state machine with its audit trail, deadlines, and the refusals.
 */
let t: AuthTest;
let rights: string;
let shop: string;
let api: ReturnType<typeof apiCall>;
beforeAll(async () => {
  ({ t, rights, shop } = await rightsApp());
  api = apiCall(t);
});
afterAll(async () => t.close());

interface View {
  id: string;
  kind: string;
  customer_id: string;
  state: string;
  channel: string;
  identity_verification: string | null;
  due_on: string;
  due_at: string;
  due_soon: boolean;
  acknowledge_by: string | null;
  paused_days: number;
  extended: boolean;
  reason: string | null;
  history: { state: string; actor: string; reason: string | null }[];
}

const file = async (kind: string, customerId: string, auth = rights, more: Record<string, unknown> = {}) => api('POST', '/v1/rights/requests', auth, { kind, customer_id: customerId, ...more });
const move = (id: string, body: Record<string, unknown>, auth = rights) => api('POST', `/v1/rights/requests/${id}/transitions`, auth, body);
const DAY = 86_400_000;

const staffJar = (role: string) => staffSession(t, role);

describe('filing a request', () => {
  it('an API key scoped to rights files one (a rectification); it is verified, in progress, due one month later, and audited', async () => {
    const { id: customerId } = await seed(t, shop);
    const res = await file('rectification', customerId);
    expect(res.statusCode, res.body).toBe(201);
    const view = res.json<View>();
    // 2026-03-02 (the test clock) + one month = 2026-04-02, a Thursday.
    expect(view).toMatchObject({ kind: 'rectification', customer_id: customerId, state: 'in_progress', channel: 'api_key', identity_verification: 'api_key', due_on: '2026-04-02' });
    expect(view.due_at).toBe('2026-04-02T23:59:59.999Z');
    expect(view.history.map((h) => h.state)).toEqual(['received', 'in_progress']);
    const log = await t.runtime.audit.forSubject(customerId, { limit: 50 });
    expect(log.filter((e) => e.action.startsWith('rights.request.')).map((e) => e.action).sort()).toEqual(['rights.request.in_progress', 'rights.request.received']);
  });

  it('a CCPA request is due in 45 days with an acknowledgement within 10 business days', async () => {
    const { id: customerId } = await seed(t, shop);
    const view = (await file('rectification', customerId, rights, { jurisdiction: 'ccpa' })).json<View>();
    expect(view).toMatchObject({ due_on: '2026-04-16', acknowledge_by: '2026-03-16' });
  });

  it('a customer files their own request with their session', async () => {
    const email = await customer(t);
    const { jar } = await signIn(t, email);
    const res = await browser(t, jar, 'POST', '/v1/me/rights-requests', { kind: 'rectification' });
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json<View>()).toMatchObject({ state: 'in_progress', channel: 'customer', identity_verification: 'customer_session' });
    const mine = await browser(t, jar, 'GET', '/v1/me/rights-requests');
    expect(mine.json<{ data: View[] }>().data.map((v) => v.id)).toEqual([res.json<View>().id]);
  });

  it('staff who verified the requester record how; without it the request waits and the clock stands still', async () => {
    const { id: customerId } = await seed(t, shop);
    const jar = await staffJar('privacy_officer');
    const verified = await browser(t, jar, 'POST', '/v1/rights/requests', { kind: 'objection', customer_id: customerId, identity_verification: 'id_document' });
    expect(verified.statusCode, verified.body).toBe(201);
    expect(verified.json<View>()).toMatchObject({ state: 'in_progress', channel: 'staff', identity_verification: 'id_document' });

    const pending = await browser(t, jar, 'POST', '/v1/rights/requests', { kind: 'access', customer_id: customerId });
    const p = pending.json<View>();
    expect(p).toMatchObject({ state: 'verifying_identity', identity_verification: null, due_on: '2026-04-02' });
    t.clock.advance(5 * DAY);
    try {
      // Five days later the staff session has ended; the shop backend records the callback.
      expect(codeOf(await move(p.id, { to: 'in_progress' }))).toBe('RIGHTS_VERIFICATION_REQUIRED');
      const started = await move(p.id, { to: 'in_progress', identity_verification: 'phone_callback' });
      expect(started.statusCode, started.body).toBe(200);
      // Five days paused: 2 April + 5 days = 7 April, a Tuesday.
      expect(started.json<View>()).toMatchObject({ state: 'in_progress', paused_days: 5, due_on: '2026-04-07', identity_verification: 'phone_callback' });
    } finally {
      t.clock.advance(-5 * DAY);
    }
  });
});

describe('the state machine', () => {
  it('in progress → extended (with the reason) → completed; a closed request moves no more', async () => {
    const { id: customerId } = await seed(t, shop);
    const { id } = (await file('rectification', customerId)).json<View>();
    expect(codeOf(await move(id, { to: 'extended' }))).toBe('RIGHTS_REASON_REQUIRED');
    const extended = await move(id, { to: 'extended', reason: 'The request covers twelve years of orders.' });
    expect(extended.statusCode, extended.body).toBe(200);
    expect(extended.json<View>()).toMatchObject({ state: 'extended', extended: true, due_on: '2026-06-02' });
    const done = await move(id, { to: 'completed' });
    expect(done.json<View>().history.map((h) => h.state)).toEqual(['received', 'in_progress', 'extended', 'completed']);
    const again = await move(id, { to: 'in_progress' });
    expect(again.statusCode).toBe(409);
    expect(codeOf(again)).toBe('RIGHTS_TRANSITION_INVALID');
  });

  it('a request cannot be extended after its first deadline', async () => {
    const { id: customerId } = await seed(t, shop);
    const { id } = (await file('rectification', customerId)).json<View>();
    t.clock.advance(40 * DAY);
    try {
      expect(codeOf(await move(id, { to: 'extended', reason: 'Too late.' }))).toBe('RIGHTS_EXTENSION_TOO_LATE');
    } finally {
      t.clock.advance(-40 * DAY);
    }
  });

  it('a denial needs its legal reason, which the request keeps', async () => {
    const { id: customerId } = await seed(t, shop);
    const { id } = (await file('objection', customerId)).json<View>();
    expect(codeOf(await move(id, { to: 'denied', reason: '   ' }))).toBe('RIGHTS_REASON_REQUIRED');
    const denied = await move(id, { to: 'denied', reason: 'Compelling legitimate grounds (GDPR Art. 21(1)).' });
    expect(denied.json<View>()).toMatchObject({ state: 'denied', reason: 'Compelling legitimate grounds (GDPR Art. 21(1)).' });
  });

  it('the open list shows due dates, soonest first, and flags those within 7 days', async () => {
    const { id: customerId } = await seed(t, shop);
    const { id } = (await file('objection', customerId)).json<View>();
    t.clock.advance(25 * DAY);
    try {
      const list = await api('GET', '/v1/rights/requests', rights);
      const data = list.json<{ data: View[] }>().data;
      const dues = data.map((v) => v.due_on);
      expect([...dues].sort()).toEqual(dues);
      expect(data.find((v) => v.id === id)).toMatchObject({ due_soon: true });
      expect(data.every((v) => !['completed', 'denied'].includes(v.state))).toBe(true);
    } finally {
      t.clock.advance(-25 * DAY);
    }
  });
});

describe('DELETE /v1/customers/{id}', () => {
  it('answers 202 with the erasure request, and the same request when repeated', async () => {
    const { id: customerId } = await seed(t, shop);
    const first = await api('DELETE', `/v1/customers/${customerId}`, rights);
    expect(first.statusCode, first.body).toBe(202);
    expect(first.json<View>()).toMatchObject({ kind: 'erasure', customer_id: customerId, state: 'in_progress' });
    await t.runtime.erasure.idle();
    const again = await api('DELETE', `/v1/customers/${customerId}`, rights);
    expect(again.statusCode).toBe(202);
    expect(again.json<View>().id).toBe(first.json<View>().id);
    const viaPost = await file('erasure', customerId);
    expect(viaPost.statusCode).toBe(200);
    expect(viaPost.json<View>().id).toBe(first.json<View>().id);
    const listed = await api('GET', `/v1/rights/requests?customer_id=${customerId}`, rights);
    expect(listed.json<{ data: View[] }>().data.filter((v) => v.kind === 'erasure')).toHaveLength(1);
  });

  it('an erasure filed with POST by a shop key is accepted at once and runs behind the answer, like DELETE', async () => {
    const { id: customerId } = await seed(t, shop);
    const res = await file('erasure', customerId);
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json<View>()).toMatchObject({ kind: 'erasure', state: 'in_progress' });
    await t.runtime.erasure.idle();
    expect((await api('GET', `/v1/rights/requests/${res.json<View>().id}`, rights)).json<View>()).toMatchObject({ state: 'completed' });
  });

  it('two erasure requests at once end in one', async () => {
    const { id: customerId } = await seed(t, shop);
    const answers = await Promise.all([1, 2, 3].map(() => api('DELETE', `/v1/customers/${customerId}`, rights)));
    expect(answers.map((a) => a.statusCode)).toEqual([202, 202, 202]);
    expect(new Set(answers.map((a) => a.json<View>().id)).size).toBe(1);
    await t.runtime.erasure.idle();
  });
});

describe('refusals', () => {
  it('a shop key without the rights purpose cannot erase a customer (DELETE needs rights)', async () => {
    const { id: customerId } = await seed(t, shop);
    const res = await api('DELETE', `/v1/customers/${customerId}`, shop);
    expect(res.statusCode).toBe(403);
    expect(codeOf(res)).toBe('RIGHTS_PURPOSE_REQUIRED');
    expect((await api('GET', `/v1/rights/requests?customer_id=${customerId}`, rights)).json<{ data: View[] }>().data).toEqual([]);
  });

  it('a shop key without the rights purpose can neither file nor list nor move requests', async () => {
    const { id: customerId } = await seed(t, shop);
    const { id } = (await file('access', customerId)).json<View>();
    expect(codeOf(await file('access', customerId, shop))).toBe('RIGHTS_PURPOSE_REQUIRED');
    expect(codeOf(await api('GET', '/v1/rights/requests', shop))).toBe('RIGHTS_PURPOSE_REQUIRED');
    expect(codeOf(await api('GET', `/v1/rights/requests/${id}`, shop))).toBe('RIGHTS_PURPOSE_REQUIRED');
    expect(codeOf(await move(id, { to: 'completed' }, shop))).toBe('RIGHTS_PURPOSE_REQUIRED');
  });

  it('a staff member without rights.manage cannot file or read requests', async () => {
    const { id: customerId } = await seed(t, shop);
    const jar = await staffJar('support_agent');
    const res = await browser(t, jar, 'POST', '/v1/rights/requests', { kind: 'erasure', customer_id: customerId, identity_verification: 'in_person' });
    expect(res.statusCode).toBe(403);
    expect(codeOf(res)).toBe('STAFF_PERMISSION_DENIED');
    expect(codeOf(await browser(t, jar, 'DELETE', `/v1/customers/${customerId}`))).toBe('STAFF_PERMISSION_DENIED');
    expect(codeOf(await browser(t, jar, 'GET', '/v1/rights/requests'))).toBe('STAFF_PERMISSION_DENIED');
  });

  it("a customer cannot read someone else's request, nor reach the shop's request list", async () => {
    const { id: otherCustomer } = await seed(t, shop);
    const { id } = (await file('access', otherCustomer)).json<View>();
    const email = await customer(t);
    const { jar } = await signIn(t, email);
    const res = await browser(t, jar, 'GET', `/v1/me/rights-requests/${id}`);
    expect(res.statusCode).toBe(404);
    expect(codeOf(res)).toBe('RIGHTS_REQUEST_NOT_FOUND');
    expect(res.body).not.toContain(otherCustomer);
    expect((await browser(t, jar, 'GET', '/v1/rights/requests')).statusCode).toBe(401);
  });

  it('a customer cannot file a request about another customer (the body takes only a kind)', async () => {
    const { id: otherCustomer } = await seed(t, shop);
    const email = await customer(t);
    const { jar } = await signIn(t, email);
    const res = await browser(t, jar, 'POST', '/v1/me/rights-requests', { kind: 'erasure', customer_id: otherCustomer });
    expect(res.statusCode).toBe(400);
    expect((await api('GET', `/v1/rights/requests?customer_id=${otherCustomer}`, rights)).json<{ data: View[] }>().data).toEqual([]);
  });

  it('an unknown kind, an unknown customer and an unknown request each have a stable code', async () => {
    const { id: customerId } = await seed(t, shop);
    const kind = await file('forget_me', customerId);
    expect(kind.statusCode).toBe(400);
    expect(codeOf(kind)).toBe('RIGHTS_KIND_UNKNOWN');
    const email = await customer(t);
    const { jar } = await signIn(t, email);
    expect(codeOf(await browser(t, jar, 'POST', '/v1/me/rights-requests', { kind: 'forget_me' }))).toBe('RIGHTS_KIND_UNKNOWN');
    const nobody = `cus_${'0'.repeat(25)}1`;
    expect(codeOf(await file('access', nobody))).toBe('RIGHTS_CUSTOMER_NOT_FOUND');
    expect(codeOf(await api('DELETE', `/v1/customers/${nobody}`, rights))).toBe('RIGHTS_CUSTOMER_NOT_FOUND');
    expect(codeOf(await api('GET', `/v1/rights/requests/rrq_${'0'.repeat(25)}1`, rights))).toBe('RIGHTS_REQUEST_NOT_FOUND');
  });
});
