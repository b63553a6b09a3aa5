import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp } from '../support/app.ts';
import { apiKey, call, person, seed, unknownId } from './helpers.ts';

/**
 * Security headers on every kind of response — success, each error path, the health check, the
 * OpenAPI document: HSTS ≥ 1 year with includeSubDomains (ASVS 5.0 3.4.1), a CSP with
 * frame-ancestors 'none' (3.4.3, 3.4.6), nosniff, no-referrer, and `Cache-Control: no-store` on
 * everything under /v1, personal data or not (14.3.2).
 */
describe('vault API security headers', () => {
  let t: TestApp;
  let auth: string;
  let s: Awaited<ReturnType<typeof seed>>;
  beforeAll(async () => {
    t = await testApp();
    auth = (await apiKey(t, ['account', 'support'])).auth;
    s = await seed(t, auth, person('headers'));
  });
  afterAll(async () => t.close());

  const v1 = () => [
    { name: '201 create', run: () => call(t, { method: 'POST', url: '/v1/customers', auth, payload: person().customer }) },
    { name: '200 read', run: () => call(t, { url: `/v1/customers/${s.id}`, auth, purpose: 'account' }) },
    { name: '200 lookup', run: () => call(t, { url: `/v1/customers?email=${encodeURIComponent(s.p.customer.email)}`, auth, purpose: 'support' }) },
    { name: '200 patch', run: () => call(t, { method: 'PATCH', url: `/v1/customers/${s.id}`, auth, payload: { locale: 'en-GB' } }) },
    { name: '200 orders', run: () => call(t, { url: `/v1/customers/${s.id}/orders`, auth, purpose: 'account' }) },
    { name: '200 order', run: () => call(t, { url: `/v1/orders/${s.orderId}`, auth, purpose: 'account' }) },
    { name: '200 access log', run: () => call(t, { url: `/v1/customers/${s.id}/access-log`, auth, purpose: 'account' }) },
    { name: '200 openapi', run: () => call(t, { url: '/v1/openapi.json' }) },
    { name: '401 missing key', run: () => call(t, { url: `/v1/customers/${s.id}`, purpose: 'account' }) },
    { name: '401 invalid key', run: () => call(t, { url: `/v1/customers/${s.id}`, auth: 'Bearer ck_nope', purpose: 'account' }) },
    { name: '400 no purpose', run: () => call(t, { url: `/v1/customers/${s.id}`, auth }) },
    { name: '403 purpose', run: () => call(t, { url: `/v1/customers/${s.id}`, auth, purpose: 'marketing' }) },
    { name: '404 unknown id', run: () => call(t, { url: `/v1/customers/${unknownId('cus')}`, auth, purpose: 'account' }) },
    { name: '404 route', run: () => call(t, { url: '/v1/nothing-here', auth }) },
    { name: '400 malformed JSON', run: () => call(t, { method: 'POST', url: '/v1/customers', auth, headers: { 'content-type': 'application/json' }, payload: '{' }) },
    { name: '400 undeclared', run: () => call(t, { method: 'POST', url: '/v1/customers', auth, payload: { colour: 'red' } }) },
  ];

  function expectSecurityHeaders(res: LightMyRequestResponse, label: string) {
    const hsts = String(res.headers['strict-transport-security'] ?? '');
    const maxAge = Number(/max-age=(\d+)/i.exec(hsts)?.[1] ?? 0);
    expect(maxAge, `${label}: HSTS max-age`).toBeGreaterThanOrEqual(31_536_000);
    expect(hsts, `${label}: HSTS`).toMatch(/includeSubDomains/i);
    const csp = String(res.headers['content-security-policy'] ?? '');
    expect(csp, `${label}: CSP`).toMatch(/(^|;)\s*frame-ancestors 'none'\s*(;|$)/);
    expect(res.headers['x-content-type-options'], `${label}: nosniff`).toBe('nosniff');
    expect(res.headers['referrer-policy'], `${label}: referrer`).toBe('no-referrer');
  }

  it('every /v1 response, success or error, carries the security headers and Cache-Control: no-store', async () => {
    for (const c of v1()) {
      const res = await c.run();
      expect(res.statusCode, c.name).toBe(Number(c.name.slice(0, 3)));
      expectSecurityHeaders(res, c.name);
      expect(String(res.headers['cache-control']), `${c.name}: cache-control`).toMatch(/(^|,)\s*no-store\s*(,|$)/);
    }
  });

  it('the health check carries the security headers', async () => {
    const res = await call(t, { url: '/health' });
    expect(res.statusCode).toBe(200);
    expectSecurityHeaders(res, '/health');
  });

  it('a route outside /v1 that does not exist carries the security headers', async () => {
    const res = await call(t, { url: '/nothing-here' });
    expect(res.statusCode).toBe(404);
    expectSecurityHeaders(res, '404');
  });

  it('the API documentation page cannot be framed either', async () => {
    let res = await call(t, { url: '/docs' });
    for (let hops = 0; hops < 5 && res.statusCode >= 300 && res.statusCode < 400; hops++) {
      const location = String(res.headers.location);
      res = await call(t, { url: location.startsWith('/') ? location : `/docs/${location.replace(/^\.\//, '')}` });
    }
    expect(res.statusCode).toBe(200);
    expectSecurityHeaders(res, '/docs');
  });
});
