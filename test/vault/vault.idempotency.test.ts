import Fastify from 'fastify';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { registerIdempotency, type IdempotencyStore } from '../../src/http/idempotency.ts';
import { fixedClock } from '../../src/kernel/clock.ts';
import { createLogger } from '../../src/kernel/logger.ts';
import type { VaultService } from '../../src/modules/vault/service.ts';
import { testApp, type TestApp } from '../support/app.ts';
import { apiKey, call, census, expectError, expectNoValues, person, personalStrings, seed } from './helpers.ts';

/**
 * Idempotency-Key on the vault's creates (IETF draft-ietf-httpapi-idempotency-key-header): a
 * retried create must not store a second customer, address or order; a key reused for another
 * body, a retry racing the first request, and another caller's use of the same key must not hand
 * out or repeat the first caller's answer; and the table keeps no personal data.
 */
const START = new Date('2026-06-15T12:00:00Z');

describe('Idempotency-Key on vault creates', () => {
  const clock = fixedClock(START);
  let t: TestApp;
  let auth: string;
  let owner: string;
  beforeAll(async () => {
    t = await testApp({ clock });
    auth = (await apiKey(t, ['account'])).auth;
    owner = (await seed(t, auth, person('idem'))).id;
  });
  afterAll(async () => t.close());

  const keyRows = async () => Number((await sql<{ n: number }>`SELECT COUNT(*) AS n FROM idempotency_keys`.execute(t.runtime.store.db)).rows[0]!.n);
  const post = (url: string, payload: unknown, key: string | undefined, as = auth) =>
    call(t, { method: 'POST', url, auth: as, purpose: 'account', payload, ...(key === undefined ? {} : { headers: { 'idempotency-key': key } }) });
  const customer = () => {
    const p = person();
    return { url: '/v1/customers', body: p.customer, p };
  };
  const creates = () => {
    const p = person();
    return [
      { url: '/v1/customers', body: p.customer, p },
      { url: `/v1/customers/${owner}/addresses`, body: p.address, p },
      { url: `/v1/customers/${owner}/orders`, body: p.order, p },
    ];
  };

  it('a retried create returns the first id and stores one record, not two', async () => {
    for (const [i, c] of creates().entries()) {
      const key = `retry-${i}-${crypto.randomUUID()}`;
      const before = await census(t, ['records', 'blind_indexes']);
      const first = await post(c.url, c.body, key);
      expect(first.statusCode, first.body).toBe(201);
      const after = await census(t, ['records', 'blind_indexes']);
      for (let retry = 0; retry < 3; retry++) {
        const again = await post(c.url, c.body, key);
        expect(again.statusCode).toBe(201);
        expect(again.json()).toEqual(first.json());
        expect(again.headers['idempotent-replayed']).toBe('true');
      }
      // The draft's structured-field form names the same key.
      expect((await post(c.url, c.body, `"${key}"`)).json()).toEqual(first.json());
      expect(await census(t, ['records', 'blind_indexes'])).toEqual(after);
      expect(after.records).toBe(before.records! + 1);
    }
  });

  it('the same key with another body is refused with 422 IDEMPOTENCY_KEY_REUSED and stores nothing', async () => {
    const [customer, address, order] = creates();
    const key = `reuse-${crypto.randomUUID()}`;
    expect((await post(customer!.url, customer!.body, key)).statusCode).toBe(201);
    const before = await census(t, ['records', 'blind_indexes']);
    expectError(await post(customer!.url, { ...customer!.body, name: 'Someone Else' }, key), 422, 'IDEMPOTENCY_KEY_REUSED');
    // Another path is another request too.
    expectError(await post(address!.url, address!.body, key), 422, 'IDEMPOTENCY_KEY_REUSED');
    expectError(await post(order!.url, order!.body, key), 422, 'IDEMPOTENCY_KEY_REUSED');
    expect(await census(t, ['records', 'blind_indexes'])).toEqual(before);
  });

  it('a retry while the first request is in flight is refused with 409 IDEMPOTENCY_KEY_IN_FLIGHT; the first still completes once', async () => {
    // The real vault, with its create held open until released.
    let release!: () => void;
    const held = new Promise<void>((resolve) => (release = resolve));
    const vault: VaultService = { ...t.runtime.vault, create: async (...args) => held.then(() => t.runtime.vault.create(...args)) };
    const app = await buildApp({ ...t.runtime, vault });
    try {
      const c = creates()[0]!;
      const key = `race-${crypto.randomUUID()}`;
      const headers = { authorization: auth, 'custos-purpose': 'account', 'idempotency-key': key };
      const rowsBefore = await keyRows();
      const before = await census(t, ['records']);
      const first = app.inject({ method: 'POST', url: c.url, headers, payload: c.body });
      for (let polls = 0; (await keyRows()) === rowsBefore; polls++) {
        if (polls > 2000) throw new Error('the first request never registered its key');
        await new Promise((r) => setTimeout(r, 5));
      }
      expectError(await app.inject({ method: 'POST', url: c.url, headers, payload: c.body }), 409, 'IDEMPOTENCY_KEY_IN_FLIGHT');
      expectError(await app.inject({ method: 'POST', url: c.url, headers, payload: { ...c.body, name: 'Other' } }), 422, 'IDEMPOTENCY_KEY_REUSED');
      release();
      const done = await first;
      expect(done.statusCode, done.body).toBe(201);
      const again = await app.inject({ method: 'POST', url: c.url, headers, payload: c.body });
      expect(again.json()).toEqual(done.json());
      expect((await census(t, ['records'])).records).toBe(before.records! + 1);
    } finally {
      release();
      await app.close();
    }
  });

  it("another caller's identical key creates its own record and never receives the first caller's answer", async () => {
    const other = (await apiKey(t, ['account'])).auth;
    const c = customer();
    const key = `shared-${crypto.randomUUID()}`;
    const mine = await post(c.url, c.body, key);
    const theirs = await post(c.url, { ...c.body, email: `x${c.body.email}` }, key, other);
    expect(theirs.statusCode).toBe(201);
    expect(theirs.json<{ id: string }>().id).not.toBe(mine.json<{ id: string }>().id);
  });

  it('a refused create keeps nothing: the key works again once the request is right', async () => {
    const c = customer();
    const key = `refused-${crypto.randomUUID()}`;
    const rows = await keyRows();
    const refused = await call(t, { method: 'POST', url: '/v1/customers/cus_00000000000000000000000000/orders', auth, purpose: 'account', payload: c.p.order, headers: { 'idempotency-key': key } });
    expect(refused.statusCode).toBe(404);
    expect(await keyRows()).toBe(rows);
    expect((await post(c.url, c.body, key)).statusCode).toBe(201);
  });

  it('a malformed key is refused with 400 IDEMPOTENCY_KEY_MALFORMED and stores nothing', async () => {
    const c = creates()[0]!;
    const before = await census(t, ['records']);
    for (const key of ['', 'has space', '"unterminated', 'k'.repeat(256), 'ümlaut'])
      expectError(await post(c.url, c.body, key), 400, 'IDEMPOTENCY_KEY_MALFORMED');
    expect(await census(t, ['records'])).toEqual(before);
  });

  it('the table holds no personal data: keyed hashes, and answers that are ids', async () => {
    const c = customer();
    const key = `pii-${c.body.email}`;
    expect((await post(c.url, c.body, key)).statusCode).toBe(201);
    const rows = await t.runtime.store.db.selectFrom('idempotency_keys').selectAll().execute();
    expect(rows.length).toBeGreaterThan(0);
    for (const row of rows) {
      expect(row.caller_ref).toMatch(/^apikey:key_[0-9A-Z]{26}$/);
      expect(row.response).toMatch(/^\{"id":"(cus|adr|ord)_[0-9A-Z]{26}"\}$/);
      expect(row.key_hash).toMatch(/^[A-Za-z0-9_-]{43}$/);
      expect(row.request_hash).toMatch(/^[A-Za-z0-9_-]{43}$/);
    }
    expectNoValues(JSON.stringify(rows), [...personalStrings(c.p), key, 'pii-']);
  });

  it('an opted-in route whose answer holds more than ids keeps no answer: a retry runs again, nothing is stored', async () => {
    const app = Fastify();
    registerIdempotency(app, { store: t.runtime.idempotency, logger: createLogger('silent') });
    app.decorateRequest('actor', null);
    app.addHook('onRequest', async (request) => void (request.actor = { ref: 'apikey:echo', kind: 'apikey', purposes: [] }));
    let runs = 0;
    app.post('/echo', { config: { idempotent: true } }, async () => ({ id: 'cus_00000000000000000000000000', email: `person${++runs}@example.org` }));
    for (let i = 0; i < 2; i++) expect((await app.inject({ method: 'POST', url: '/echo', headers: { 'idempotency-key': 'echo-1' }, payload: {} })).statusCode).toBe(200);
    expect(runs).toBe(2);
    const kept = await t.runtime.store.db.selectFrom('idempotency_keys').selectAll().where('caller_ref', '=', 'apikey:echo').execute();
    expect(kept).toEqual([]);
    await app.close();
  });

  it('a key lasts 24 hours: after that the same key is new again and the old row is swept', async () => {
    const c = customer();
    const key = `expiry-${crypto.randomUUID()}`;
    const first = await post(c.url, c.body, key);
    clock.advance(24 * 3_600_000 + 1000);
    const later = await post(c.url, { ...c.body, email: `later${c.body.email}` }, key);
    expect(later.statusCode).toBe(201);
    expect(later.json<{ id: string }>().id).not.toBe(first.json<{ id: string }>().id);
    const old = await t.runtime.store.db.selectFrom('idempotency_keys').select('created_at').where('created_at', '<', clock.now().toISOString()).execute();
    expect(old).toEqual([]);
  });

  it('sign-in ignores Idempotency-Key (its answer carries a secret), and no auth route can opt in', async () => {
    const rows = await keyRows();
    await t.app.inject({ method: 'POST', url: '/v1/auth/signin', headers: { 'idempotency-key': 'signin-1' }, payload: { email: 'nobody@example.org', password: 'a password of some length' } });
    expect(await keyRows()).toBe(rows);
    const app = Fastify();
    registerIdempotency(app, { store: {} as IdempotencyStore, logger: createLogger('silent') });
    for (const url of ['/v1/auth/signin', '/v1/auth/mfa/totp', '/v1/staff/auth/signin'])
      expect(() => app.post(url, { config: { idempotent: true } }, async () => ({}))).toThrow(/cannot honour Idempotency-Key/);
    await app.close();
  });
});
