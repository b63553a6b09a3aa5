import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browser, codeOf, type AuthTest } from '../identity/helpers.ts';
import { person, seed } from '../vault/helpers.ts';
import { apiCall, rightsApp, staffSession } from './helpers.ts';

/**
 * Shopify's compliance webhooks through the whole app, on SQLite and PostgreSQL, with the payload
 * shapes Shopify documents. Attacks: a forged or missing signature, a body changed after signing,
 * another shop, a replayed delivery; none records anything. A shop redact never wipes on its own.
 */
const SECRET = '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';
const SHOP = 'acme-outdoor.myshopify.com';
let t: AuthTest;
let rights: string;
let shop: string;
let call: ReturnType<typeof apiCall>;
beforeAll(async () => {
  ({ t, rights, shop } = await rightsApp({ CUSTOS_SHOPIFY_WEBHOOK_SECRET: SECRET, CUSTOS_SHOPIFY_SHOP_DOMAIN: SHOP }));
  call = apiCall(t);
});
afterAll(async () => t.close());

let delivery = 0;
interface Send {
  secret?: string;
  shopHeader?: string;
  webhookId?: string;
  /** Signs this body but sends `body` (a body changed in transit). */
  signed?: string;
  hmac?: string | null;
}
function send(app: AuthTest, topic: string, payload: Record<string, unknown>, o: Send = {}) {
  const body = JSON.stringify(payload);
  const hmac = o.hmac === undefined ? createHmac('sha256', o.secret ?? SECRET).update(o.signed ?? body).digest('base64') : o.hmac;
  return app.app.inject({
    method: 'POST',
    url: '/v1/integrations/shopify/webhooks',
    headers: {
      'content-type': 'application/json',
      'x-shopify-topic': topic,
      'x-shopify-shop-domain': o.shopHeader ?? SHOP,
      'x-shopify-webhook-id': o.webhookId ?? `b54557e4-8a5f-bf7d-70bc-${String(++delivery).padStart(12, '0')}`,
      'x-shopify-api-version': '2025-10',
      ...(hmac === null ? {} : { 'x-shopify-hmac-sha256': hmac }),
    },
    payload: body,
  });
}

// The shapes of shopify.dev, "Privacy law compliance".
const dataRequest = (customer: Record<string, unknown>) => ({ shop_id: 954889, shop_domain: SHOP, orders_requested: [299938, 280263, 220458], customer, data_request: { id: 9999 } });
const redact = (customer: Record<string, unknown>) => ({ shop_id: 954889, shop_domain: SHOP, customer, orders_to_redact: [299938, 280263, 220458] });

async function shopifyCustomer(shopifyId: string) {
  const p = person();
  const s = await seed(t, shop, p);
  const set = await call('PATCH', `/v1/customers/${s.id}`, shop, { shopify_customer_id: shopifyId });
  expect(set.statusCode, set.body).toBe(200);
  return s;
}

async function requestsOf(customerId: string) {
  return (await call('GET', `/v1/rights/requests?customer_id=${customerId}`, rights)).json<{ data: { id: string; kind: string; state: string; channel: string; identity_verification: string }[] }>().data;
}

describe('customers/data_request', () => {
  it('matched by shopify_customer_id: an access request in the staff queue, verified by the signed webhook', async () => {
    const { id } = await shopifyCustomer('191167');
    const res = await send(t, 'customers/data_request', dataRequest({ id: 191167, email: 'someone-else@example.org', phone: '555-625-1199' }));
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ outcome: 'request_filed', request_id: expect.stringMatching(/^rrq_/) });
    const [request] = await requestsOf(id);
    expect(request).toMatchObject({ kind: 'access', state: 'in_progress', channel: 'integration', identity_verification: 'signed_webhook' });
    // Staff answer it; the export's link is theirs to hand to the store owner.
    const done = await call('POST', `/v1/rights/requests/${request!.id}/transitions`, rights, { to: 'completed' });
    expect(done.json<{ export: { token: string } }>().export.token).toMatch(/^rex_/);
  });

  it('matched by email when Custos holds no Shopify id', async () => {
    const { id, p } = await seed(t, shop);
    const res = await send(t, 'customers/data_request', dataRequest({ id: 5550001, email: p.customer.email.toUpperCase() }));
    expect(res.json()).toMatchObject({ outcome: 'request_filed' });
    expect((await requestsOf(id)).map((r) => r.kind)).toEqual(['access']);
  });

  it('a customer Custos does not hold: 200 and a "no data held" record, no request', async () => {
    const before = (await call('GET', '/v1/rights/requests', rights)).json<{ data: unknown[] }>().data.length;
    const webhookId = 'no-data-held-1';
    const res = await send(t, 'customers/data_request', dataRequest({ id: 7770007, email: 'nobody.here@example.org' }), { webhookId });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({ outcome: 'no_data_held', request_id: null });
    expect((await call('GET', '/v1/rights/requests', rights)).json<{ data: unknown[] }>().data).toHaveLength(before);
    const listed = (await call('GET', '/v1/rights/shopify-webhooks', rights)).json<{ data: { webhook_id: string; outcome: string; topic: string }[] }>().data;
    expect(listed.find((w) => w.webhook_id === webhookId)).toMatchObject({ outcome: 'no_data_held', topic: 'customers/data_request' });
  });
});

describe('customers/redact', () => {
  it('erases the customer (legal holds apply), answering at once', async () => {
    const { id } = await shopifyCustomer('88001');
    const res = await send(t, 'customers/redact', redact({ id: 88001, email: 'x@example.org', phone: '555-625-1199' }));
    expect(res.json()).toMatchObject({ outcome: 'request_filed' });
    const requestId = res.json<{ request_id: string }>().request_id;
    let state = '';
    for (let i = 0; i < 100 && state !== 'completed'; i++) {
      state = (await call('GET', `/v1/rights/requests/${requestId}`, rights)).json<{ state: string }>().state;
      if (state !== 'completed') await new Promise((r) => setTimeout(r, 50));
    }
    expect(state).toBe('completed');
    expect(codeOf(await call('GET', `/v1/customers/${id}`, shop, undefined, { 'custos-purpose': 'account' }))).toBe('VAULT_NOT_FOUND');
  });
});

describe('what is refused, and records nothing', () => {
  it('a forged, missing or malformed signature, or a body changed after signing: 401', async () => {
    const { id } = await shopifyCustomer('424242');
    const payload = dataRequest({ id: 424242 });
    const attempts: Send[] = [
      { secret: 'shpss_not_the_app_secret' },
      { hmac: null },
      { hmac: 'not base64!' },
      { hmac: createHmac('sha256', SECRET).update('{}').digest('hex') },
      { signed: JSON.stringify(dataRequest({ id: 1 })) },
    ];
    for (const a of attempts) {
      const res = await send(t, 'customers/data_request', payload, a);
      expect(res.statusCode, JSON.stringify(a)).toBe(401);
      expect(codeOf(res)).toBe('RIGHTS_SHOPIFY_SIGNATURE_INVALID');
    }
    expect(await requestsOf(id)).toEqual([]);
  });

  it('a replayed delivery (same X-Shopify-Webhook-Id) changes nothing', async () => {
    const { id } = await shopifyCustomer('515151');
    const first = await send(t, 'customers/data_request', dataRequest({ id: 515151 }), { webhookId: 'replayed-1' });
    const again = await send(t, 'customers/data_request', dataRequest({ id: 515151 }), { webhookId: 'replayed-1' });
    expect(again.statusCode).toBe(200);
    expect(again.json()).toEqual({ outcome: 'duplicate', request_id: first.json<{ request_id: string }>().request_id });
    expect(await requestsOf(id)).toHaveLength(1);
  });

  it('another shop (header or body), an unknown topic, a body of the wrong shape: stable codes', async () => {
    const { id } = await shopifyCustomer('616161');
    expect(codeOf(await send(t, 'customers/data_request', dataRequest({ id: 616161 }), { shopHeader: 'other.myshopify.com' }))).toBe('RIGHTS_SHOPIFY_SHOP_MISMATCH');
    expect(codeOf(await send(t, 'customers/data_request', { ...dataRequest({ id: 616161 }), shop_domain: 'other.myshopify.com' }))).toBe('RIGHTS_SHOPIFY_SHOP_MISMATCH');
    expect(codeOf(await send(t, 'orders/create', { id: 1 }))).toBe('RIGHTS_SHOPIFY_TOPIC_UNKNOWN');
    expect(codeOf(await send(t, 'customers/redact', { shop_id: 'x', shop_domain: SHOP, customer: { id: 616161 } }))).toBe('RIGHTS_SHOPIFY_WEBHOOK_INVALID');
    expect(await requestsOf(id)).toEqual([]);
    // Refused deliveries are not remembered: the same id sent properly is handled.
    const ok = await send(t, 'customers/data_request', dataRequest({ id: 616161 }), { webhookId: 'retry-after-refusal' });
    expect(ok.json()).toMatchObject({ outcome: 'request_filed' });
  });

  it('without CUSTOS_SHOPIFY_WEBHOOK_SECRET the route answers 503', async () => {
    const plain = await rightsApp();
    try {
      const res = await send(plain.t, 'shop/redact', { shop_id: 954889, shop_domain: SHOP });
      expect(res.statusCode).toBe(503);
      expect(codeOf(res)).toBe('RIGHTS_SHOPIFY_NOT_CONFIGURED');
    } finally {
      await plain.t.close();
    }
  });
});

describe('shop/redact', () => {
  it('records a shop erasure that runs only once two different staff members approved it', { timeout: 300_000 }, async () => {
    const other = await rightsApp({ CUSTOS_SHOPIFY_WEBHOOK_SECRET: SECRET });
    try {
      const api = apiCall(other.t);
      const customers = [await seed(other.t, other.shop), await seed(other.t, other.shop)];
      const res = await send(other.t, 'shop/redact', { shop_id: 954889, shop_domain: SHOP });
      expect(res.json()).toMatchObject({ outcome: 'shop_erasure_recorded', request_id: expect.stringMatching(/^she_/) });
      const id = res.json<{ request_id: string }>().request_id;
      // Nothing is wiped by the webhook.
      for (const c of customers) expect((await api('GET', `/v1/customers/${c.id}`, other.shop, undefined, { 'custos-purpose': 'account' })).statusCode).toBe(200);
      expect(codeOf(await api('POST', `/v1/rights/shop-erasures/${id}/approve`, other.rights))).toBe('RIGHTS_SHOP_ERASURE_STAFF_ONLY');
      const a = await staffSession(other.t, 'privacy_officer');
      const b = await staffSession(other.t, 'privacy_officer');
      const first = await browser(other.t, a, 'POST', `/v1/rights/shop-erasures/${id}/approve`);
      expect(first.json()).toMatchObject({ state: 'approved' });
      const same = await browser(other.t, a, 'POST', `/v1/rights/shop-erasures/${id}/approve`);
      expect(codeOf(same)).toBe('RIGHTS_SHOP_ERASURE_SECOND_APPROVER');
      for (const c of customers) expect((await api('GET', `/v1/customers/${c.id}`, other.shop, undefined, { 'custos-purpose': 'account' })).statusCode).toBe(200);
      const confirmed = await browser(other.t, b, 'POST', `/v1/rights/shop-erasures/${id}/approve`);
      expect(confirmed.json()).toMatchObject({ state: 'confirmed' });
      const done = await other.t.runtime.shopErasures.run(id, 'test');
      expect(done).toMatchObject({ state: 'completed', customers_erased: 2 });
      for (const c of customers) expect(codeOf(await api('GET', `/v1/customers/${c.id}`, other.shop, undefined, { 'custos-purpose': 'account' }))).toBe('VAULT_NOT_FOUND');
    } finally {
      await other.t.close();
    }
  });
});
