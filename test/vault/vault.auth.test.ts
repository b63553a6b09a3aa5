import { randomBytes } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { createLogger } from '../../src/kernel/logger.ts';
import { openRuntime } from '../../src/runtime.ts';
import { testApp, type TestApp } from '../support/app.ts';
import { apiKey, call, census, CORE_TABLES, expectError, person, seed, unknownId } from './helpers.ts';

/**
 * API key authentication. Attacks tried: no key, a key of the wrong scheme, malformed keys, a
 * well-formed key that was never issued, a real key id with a guessed secret, and a revoked key.
 * All refusals but "missing" must look the same — same status, same code, same message, same
 * body shape — so answers cannot be used to probe which key ids exist or were revoked (OWASP ASVS
 * 5.0 6.3.8 applied to API keys); revocation takes effect on the very next request.
 */
describe('vault API authentication', () => {
  let t: TestApp;
  let good: { auth: string; id: string };
  let customerId: string;
  beforeAll(async () => {
    t = await testApp();
    good = await apiKey(t, ['account']);
    customerId = (await seed(t, good.auth)).id;
  });
  afterAll(async () => t.close());

  const endpoints = () => [
    { method: 'POST' as const, url: '/v1/customers', payload: person().customer },
    { method: 'GET' as const, url: `/v1/customers/${customerId}` },
    { method: 'PATCH' as const, url: `/v1/customers/${customerId}`, payload: { name: 'X' } },
    { method: 'GET' as const, url: '/v1/customers?email=a%40b.org' },
    { method: 'POST' as const, url: `/v1/customers/${customerId}/addresses`, payload: person().address },
    { method: 'POST' as const, url: `/v1/customers/${customerId}/orders`, payload: person().order },
    { method: 'GET' as const, url: `/v1/customers/${customerId}/orders` },
    { method: 'GET' as const, url: `/v1/orders/${unknownId('ord')}` },
    { method: 'GET' as const, url: `/v1/customers/${customerId}/access-log` },
  ];

  /** The parts of a refusal an observer can compare (the request id differs by design). */
  const shape = (res: LightMyRequestResponse) => {
    const body = res.json<{ error: Record<string, unknown> }>();
    return {
      status: res.statusCode,
      keys: Object.keys(body).sort(),
      errorKeys: Object.keys(body.error).sort(),
      code: body.error.code,
      message: body.error.message,
      wwwAuthenticate: res.headers['www-authenticate'],
      contentType: res.headers['content-type'],
    };
  };

  it('no Authorization header: 401 APIKEY_MISSING on every /v1 endpoint, nothing stored', async () => {
    const before = await census(t, CORE_TABLES);
    for (const e of endpoints()) expectError(await call(t, { ...e, purpose: 'account' }), 401, 'APIKEY_MISSING');
    expectError(await call(t, { url: `/v1/customers/${customerId}`, purpose: 'account', auth: '' }), 401, 'APIKEY_MISSING');
    expect(await census(t, CORE_TABLES)).toEqual(before);
  });

  it('malformed, unknown, guessed and revoked keys get one identical 401 APIKEY_INVALID', async () => {
    const victim = await apiKey(t, ['account']);
    const [, victimRef] = /^Bearer ck_([0-9A-Z]{26})_/.exec(victim.auth)!;
    await t.runtime.apiKeys.revoke(victim.id);
    const fresh = `ck_${'0'.repeat(26)}_${randomBytes(32).toString('base64url')}`;
    const guessed = `ck_${/^Bearer ck_([0-9A-Z]{26})_/.exec(good.auth)![1]}_${randomBytes(32).toString('base64url')}`;
    const candidates: Record<string, string> = {
      'wrong scheme': `Basic ${Buffer.from('user:pass').toString('base64')}`,
      'scheme only': 'Bearer',
      'empty token': 'Bearer ',
      'not a key': 'Bearer hello',
      'truncated key': good.auth.slice(0, -5),
      'key with suffix': `${good.auth}x`,
      'lower-case id': good.auth.replace(/ck_([0-9A-Z]{26})_/, (_m, id: string) => `ck_${id.toLowerCase()}_`),
      'unknown well-formed key': `Bearer ${fresh}`,
      'real id, guessed secret': `Bearer ${guessed}`,
      revoked: victim.auth,
      'revoked id, guessed secret': `Bearer ck_${victimRef!}_${randomBytes(32).toString('base64url')}`,
    };
    const shapes = new Map<string, ReturnType<typeof shape>>();
    for (const [name, auth] of Object.entries(candidates)) {
      const res = await call(t, { url: `/v1/customers/${customerId}`, auth, purpose: 'account' });
      expectError(res, 401, 'APIKEY_INVALID');
      shapes.set(name, shape(res));
    }
    const reference = shapes.get('unknown well-formed key');
    for (const [name, s] of shapes) expect(s, `"${name}" differs from an unknown key`).toEqual(reference);
  });

  it('every endpoint answers a revoked key like an unknown one', async () => {
    const revoked = await apiKey(t, ['account']);
    await t.runtime.apiKeys.revoke(revoked.id);
    const unknown = `Bearer ck_${'1'.repeat(26)}_${randomBytes(32).toString('base64url')}`;
    for (const e of endpoints()) {
      const a = await call(t, { ...e, auth: revoked.auth, purpose: 'account' });
      const b = await call(t, { ...e, auth: unknown, purpose: 'account' });
      expectError(a, 401, 'APIKEY_INVALID');
      expect(shape(a)).toEqual(shape(b));
    }
  });

  it('revocation takes effect on the very next request', async () => {
    const k = await apiKey(t, ['account']);
    const ok = await call(t, { url: `/v1/customers/${customerId}`, auth: k.auth, purpose: 'account' });
    expect(ok.statusCode).toBe(200);
    await t.runtime.apiKeys.revoke(k.id);
    expectError(await call(t, { url: `/v1/customers/${customerId}`, auth: k.auth, purpose: 'account' }), 401, 'APIKEY_INVALID');
    const before = await census(t, CORE_TABLES);
    expectError(await call(t, { method: 'POST', url: '/v1/customers', auth: k.auth, payload: person().customer }), 401, 'APIKEY_INVALID');
    expect(await census(t, CORE_TABLES)).toEqual(before);
  });

  it('a revocation made by another process (the CLI) reaches a running server', async () => {
    const k = await apiKey(t, ['account']);
    const read = () => call(t, { url: `/v1/customers/${customerId}`, auth: k.auth, purpose: 'account' });
    // Used twice first, so that a server that caches verified keys has this one cached.
    expect((await read()).statusCode).toBe(200);
    expect((await read()).statusCode).toBe(200);
    const other = await openRuntime(loadConfig(t.env), { background: false, logger: createLogger('silent') });
    try {
      await other.apiKeys.revoke(k.id);
    } finally {
      await other.close();
    }
    // SQLite reads the row on every request; PostgreSQL's cache is emptied by the revocation's
    // NOTIFY, which arrives on its own connection a moment after the commit. A cache that missed
    // it would accept the key for a minute: far past this bound.
    const deadline = Date.now() + 5000;
    let res = await read();
    while (res.statusCode === 200 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 10));
      res = await read();
    }
    expectError(res, 401, 'APIKEY_INVALID');
  });

  it('authentication comes before body parsing and validation (no oracle for unauthenticated callers)', async () => {
    const malformed = await call(t, {
      method: 'POST',
      url: '/v1/customers',
      headers: { 'content-type': 'application/json' },
      payload: '{"email": ',
    });
    expectError(malformed, 401, 'APIKEY_MISSING');
    const undeclared = await call(t, { method: 'POST', url: '/v1/customers', auth: 'Bearer nope', payload: { ssn: '078-05-1120' } });
    expectError(undeclared, 401, 'APIKEY_INVALID');
    expectError(await call(t, { url: '/v1/customers/not-an-id', auth: 'Bearer nope', purpose: 'account' }), 401, 'APIKEY_INVALID');
  });
});
