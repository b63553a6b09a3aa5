import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/kernel/clock.ts';
import { testApp, type TestApp } from '../support/app.ts';
import { TEST_DIALECT } from '../support/store.ts';
import { call, expectError, expectNoValues } from '../vault/helpers.ts';

/**
 * Card sessions: a shop backend mints a single-use publishable key, the card fields spend it on one
 * card. The attacks: a replayed key, an expired key, a key altered or from another Custos, a key
 * presented where an API key belongs (and the reverse), a key minted for one storefront used from
 * another, a call from an origin that is no storefront (CORS refused), and two uses at once.
 */
const PAN = '4111111111111111';
const MC = '5555555555554444';
const NAME = 'Philippa Quennell-Abernethy';
const SHOP = 'https://shop.example';
const OTHER_SHOP = 'https://other-shop.example';
const EVIL = 'https://evil.example';
const FUTURE = new Date().getUTCFullYear() + 3;
const card = (over: Record<string, unknown> = {}) => ({ pan: PAN, exp_month: 4, exp_year: FUTURE, cardholder_name: NAME, cvv: '123', ...over });

interface Minted {
  id: string;
  publishable_key: string;
  collect_url: string;
  origin: string;
  customer_id: string | null;
  token_format: string;
  expires_at: string;
}

describe(`card sessions and POST /v1/cards/collect (${TEST_DIALECT})`, () => {
  let t: TestApp;
  let other: TestApp;
  let payments: string;
  let account: string;
  const clock = fixedClock(new Date());

  const mint = async (body: Record<string, unknown> = {}, auth = payments) => {
    const res = await call(t, { method: 'POST', url: '/v1/cards/sessions', auth, purpose: 'payments', payload: body });
    expect(res.statusCode, res.body).toBe(201);
    return res.json<Minted>();
  };
  const collect = (key: string, payload: unknown = card(), headers: Record<string, string> = {}, app: TestApp = t) =>
    call(app, { method: 'POST', url: '/v1/cards/collect', auth: `Bearer ${key}`, payload, headers });
  const cardCount = async () => Number((await sql<{ n: number }>`SELECT count(*) AS n FROM cards`.execute(t.runtime.store.db)).rows[0]!.n);
  const entries = async (action: string) => {
    await t.runtime.audit.chainPending();
    return t.runtime.store.db.selectFrom('audit_log').select(['actor', 'action', 'record_id', 'subject_id', 'fields', 'outcome']).where('action', '=', action).orderBy('id').execute();
  };

  beforeAll(async () => {
    t = await testApp({ clock, env: { CUSTOS_STOREFRONT_ORIGINS: `${SHOP},${OTHER_SHOP}`, CUSTOS_PUBLIC_URL: 'https://vault.shop.example' } });
    other = await testApp({ env: { CUSTOS_STOREFRONT_ORIGINS: SHOP, CUSTOS_AUTH_FAILURE_LIMIT: '3' } });
    payments = await t.bearer(['payments']);
    account = await t.bearer(['account']);
  });
  afterAll(async () => {
    await t?.close();
    await other?.close();
  });

  it('mints a key for a storefront: shown once, stored only as a keyed hash, with the iframe URL; audited', async () => {
    const s = await mint({ origin: SHOP });
    expect(s).toMatchObject({ id: expect.stringMatching(/^cks_[0-9A-HJKMNP-TV-Z]{26}$/), origin: SHOP, customer_id: null, token_format: 'opaque' });
    expect(s.publishable_key).toMatch(/^cpk_[0-9A-HJKMNP-TV-Z]{26}_[A-Za-z0-9_-]{43}$/);
    expect(s.collect_url).toBe(`https://vault.shop.example/cards/collect#key=${s.publishable_key}`);
    expect(new Date(s.expires_at).getTime() - clock.now().getTime()).toBe(15 * 60_000);
    const rows = await sql<Record<string, unknown>>`SELECT * FROM card_sessions`.execute(t.runtime.store.db);
    expect(JSON.stringify(rows.rows)).not.toContain(s.publishable_key.split('_')[2]);
    const created = (await entries('cards.session_create')).find((e) => e.record_id === s.id);
    expect(created).toMatchObject({ actor: expect.stringMatching(/^apikey:key_/), outcome: 'success' });
  });

  it('refuses to mint for an origin that is not a storefront, without naming one among several, or without the payments purpose', async () => {
    for (const body of [{ origin: EVIL }, {}, { origin: 'https://shop.example.evil.example' }])
      expectError(await call(t, { method: 'POST', url: '/v1/cards/sessions', auth: payments, purpose: 'payments', payload: body }), 400, 'CARDS_STOREFRONT_ORIGIN_NOT_ALLOWED');
    expectError(await call(t, { method: 'POST', url: '/v1/cards/sessions', auth: account, purpose: 'account', payload: { origin: SHOP } }), 403, 'CARDS_PURPOSE_NOT_ALLOWED');
    // The only storefront is the default where one is configured; none configured, none minted.
    const single = await call(other, { method: 'POST', url: '/v1/cards/sessions', auth: await other.bearer(['payments']), purpose: 'payments', payload: {} });
    expect(single.statusCode, single.body).toBe(201);
    expect(single.json<Minted>().origin).toBe(SHOP);
  });

  it('tokenises once with the key: the card is bound to the session’s customer and format, the answer has no card number, the session shows the token', async () => {
    const customer = await call(t, { method: 'POST', url: '/v1/customers', auth: account, payload: { email: 'quennell@example.org', name: NAME } });
    expect(customer.statusCode, customer.body).toBe(201);
    const customerId = customer.json<{ id: string }>().id;
    const s = await mint({ origin: SHOP, customer_id: customerId, token_format: 'format_preserving' });
    const res = await collect(s.publishable_key, card({ pan: MC }));
    expect(res.statusCode, res.body).toBe(201);
    const body = res.json<{ token: string; session: string; origin: string }>();
    expect(body).toMatchObject({ brand: 'mastercard', bin: '555555', last4: '4444', exp_month: 4, exp_year: FUTURE, session: s.id, origin: SHOP });
    expect(body.token).toMatch(/^\d{16}$/);
    expectNoValues(res, [MC, NAME, '123']);
    const read = await call(t, { url: `/v1/cards/${body.token}`, auth: payments, purpose: 'payments' });
    expect(read.json()).toMatchObject({ customer_id: customerId, last4: '4444', cardholder_name: NAME });
    const state = await call(t, { url: `/v1/cards/sessions/${s.id}`, auth: payments, purpose: 'payments' });
    expect(state.statusCode, state.body).toBe(200);
    expect(state.json()).toMatchObject({ id: s.id, status: 'used', token: body.token, customer_id: customerId });
    // Audited as the session, the card's customer as subject; no client address in the audit log
    // (detection keeps the request's origin by its request id, PCI DSS 10.2.2).
    const tokenised = (await entries('cards.tokenise')).find((e) => e.record_id === body.token);
    expect(tokenised).toMatchObject({ actor: `card_session:${s.id}`, subject_id: customerId, outcome: 'success' });
    expect(tokenised!.fields).not.toMatch(/origin\./);
  });

  it('a replayed key is refused (CARDS_SESSION_KEY_USED) and stores nothing; the refusal is audited', async () => {
    const s = await mint({ origin: SHOP });
    expect((await collect(s.publishable_key)).statusCode).toBe(201);
    const before = await cardCount();
    const again = await collect(s.publishable_key, card({ pan: MC }));
    expectError(again, 409, 'CARDS_SESSION_KEY_USED');
    expectNoValues(again, [MC, NAME]);
    expect(await cardCount()).toBe(before);
    expect((await entries('cards.tokenise')).filter((e) => e.actor === `card_session:${s.id}`).map((e) => e.outcome)).toEqual(['success', 'denied']);
  });

  it('of two uses at once, exactly one stores a card', async () => {
    const s = await mint({ origin: SHOP });
    const before = await cardCount();
    const results = await Promise.all([collect(s.publishable_key), collect(s.publishable_key, card({ pan: MC })), collect(s.publishable_key)]);
    expect(results.map((r) => r.statusCode).sort()).toEqual([201, 409, 409]);
    expect(await cardCount()).toBe(before + 1);
  });

  it('an expired key is refused (CARDS_SESSION_KEY_EXPIRED); GET shows the session expired', async () => {
    const s = await mint({ origin: SHOP });
    clock.advance(15 * 60_000 + 1);
    try {
      expectError(await collect(s.publishable_key), 401, 'CARDS_SESSION_KEY_EXPIRED');
      expect((await call(t, { url: `/v1/cards/sessions/${s.id}`, auth: payments, purpose: 'payments' })).json()).toMatchObject({ status: 'expired', token: null });
    } finally {
      clock.advance(-(15 * 60_000 + 1));
    }
  });

  it('a refused card leaves the key unspent, so the customer can correct a typo', async () => {
    const s = await mint({ origin: SHOP });
    expectError(await collect(s.publishable_key, card({ pan: '4111111111111112' })), 400, 'CARDS_PAN_LUHN');
    expectError(await collect(s.publishable_key, card({ exp_year: 2001 })), 400, 'CARDS_EXPIRED');
    expectError(await collect(s.publishable_key, card({ cardholder_name: `card ${PAN}` })), 400, 'CARDS_NUMBER_IN_FREE_TEXT');
    expect((await collect(s.publishable_key)).statusCode).toBe(201);
  });

  it('foreign keys are refused: altered, from another Custos, an API key, nothing; and the publishable key opens no other route', async () => {
    const s = await mint({ origin: SHOP });
    const altered = `${s.publishable_key.slice(0, -1)}${s.publishable_key.endsWith('A') ? 'B' : 'A'}`;
    expectError(await collect(altered), 401, 'CARDS_SESSION_KEY_INVALID');
    const foreign = await call(other, { method: 'POST', url: '/v1/cards/sessions', auth: await other.bearer(['payments']), purpose: 'payments', payload: {} });
    expectError(await collect(foreign.json<Minted>().publishable_key), 401, 'CARDS_SESSION_KEY_INVALID');
    expectError(await collect(payments.slice('Bearer '.length)), 401, 'CARDS_SESSION_KEY_INVALID');
    expectError(await call(t, { method: 'POST', url: '/v1/cards/collect', payload: card() }), 401, 'CARDS_SESSION_KEY_INVALID');
    // The key works only for tokenising: every API-key route refuses it.
    const pk = `Bearer ${s.publishable_key}`;
    expectError(await call(t, { method: 'POST', url: '/v1/cards', auth: pk, purpose: 'payments', payload: card() }), 401, 'APIKEY_INVALID');
    expectError(await call(t, { method: 'POST', url: '/v1/cards/sessions', auth: pk, purpose: 'payments', payload: {} }), 401, 'APIKEY_INVALID');
    expectError(await call(t, { method: 'POST', url: '/v1/relay', auth: pk, purpose: 'payments', payload: { url: 'https://x.example', method: 'GET' } }), 401, 'APIKEY_INVALID');
    expectError(await call(t, { url: '/v1/customers?email=a@example.org', auth: pk, purpose: 'support' }), 401, 'APIKEY_INVALID');
    // None of that spent it.
    expect((await collect(s.publishable_key)).statusCode).toBe(201);
  });

  it('CORS: a storefront origin gets its preflight and the answer; any other origin is refused without CORS headers and spends nothing', async () => {
    const s = await mint({ origin: SHOP });
    const preflight = (origin: string) =>
      t.app.inject({ method: 'OPTIONS', url: '/v1/cards/collect', headers: { origin, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization, content-type' } });
    const ok = await preflight(SHOP);
    expect(ok.statusCode).toBe(204);
    expect(ok.headers).toMatchObject({ 'access-control-allow-origin': SHOP, 'access-control-allow-methods': 'POST', vary: 'Origin' });
    expect(String(ok.headers['access-control-allow-headers'])).toContain('authorization');
    expect(ok.headers['access-control-allow-credentials']).toBeUndefined();
    for (const origin of [EVIL, 'null', `${SHOP}.evil.example`, 'http://shop.example']) {
      const refused = await preflight(origin);
      expectError(refused, 403, 'CARDS_ORIGIN_NOT_ALLOWED');
      expect(refused.headers['access-control-allow-origin']).toBeUndefined();
      const post = await collect(s.publishable_key, card(), { origin });
      expectError(post, 403, 'CARDS_ORIGIN_NOT_ALLOWED');
      expect(post.headers['access-control-allow-origin']).toBeUndefined();
    }
    // Other routes answer no storefront's preflight.
    const elsewhere = await t.app.inject({ method: 'OPTIONS', url: '/v1/cards', headers: { origin: SHOP, 'access-control-request-method': 'POST' } });
    expect(elsewhere.headers['access-control-allow-origin']).toBeUndefined();
    // The storefront's own call works, with the CORS header on the answer; Custos's own origin needs none.
    const direct = await collect(s.publishable_key, card(), { origin: SHOP });
    expect(direct.statusCode, direct.body).toBe(201);
    expect(direct.headers['access-control-allow-origin']).toBe(SHOP);
    const own = await mint({ origin: SHOP });
    const fromPage = await collect(own.publishable_key, card(), { origin: 'https://vault.shop.example' });
    expect(fromPage.statusCode, fromPage.body).toBe(201);
    expect(fromPage.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('a key minted for one storefront is refused from another (CARDS_SESSION_ORIGIN_MISMATCH)', async () => {
    const s = await mint({ origin: SHOP });
    expectError(await collect(s.publishable_key, card(), { origin: OTHER_SHOP }), 403, 'CARDS_SESSION_ORIGIN_MISMATCH');
    expect((await collect(s.publishable_key, card(), { origin: SHOP })).statusCode).toBe(201);
  });

  it('guessing keys blocks the address (the failed-authentication budget), before any key is looked at; a request with no key counts nothing', async () => {
    const minted = await call(other, { method: 'POST', url: '/v1/cards/sessions', auth: await other.bearer(['payments']), purpose: 'payments', payload: {} });
    const { id, publishable_key: key } = minted.json<Minted>();
    for (let i = 0; i < 5; i++) expectError(await call(other, { method: 'POST', url: '/v1/cards/collect', payload: card() }), 401, 'CARDS_SESSION_KEY_INVALID');
    const guess = (n: number) => `cpk_${'0'.repeat(26)}_${String(n).padStart(43, 'A')}`;
    const codes: string[] = [];
    for (let i = 0; i < 5; i++) codes.push((await collect(guess(i), card(), {}, other)).json<{ error: { code: string } }>().error.code);
    expect(codes.slice(0, 2)).toEqual(['CARDS_SESSION_KEY_INVALID', 'CARDS_SESSION_KEY_INVALID']);
    expect(codes.at(-1)).toBe('IDENTITY_AUTH_THROTTLED');
    // The real key from a blocked address is refused too (as is everything else from it), and stays unspent.
    expectError(await collect(key, card(), {}, other), 429, 'IDENTITY_AUTH_THROTTLED');
    expect(await other.runtime.store.db.selectFrom('card_sessions').select('used_at').where('id', '=', id).executeTakeFirst()).toEqual({ used_at: null });
  });

  it('the sweep removes sessions a day after they expired, not before', async () => {
    const s = await mint({ origin: SHOP });
    expect(await t.runtime.cardSessions.sweep()).toBe(0);
    clock.advance(15 * 60_000 + 24 * 3_600_000 + 1);
    try {
      expect(await t.runtime.cardSessions.sweep()).toBeGreaterThan(0);
      expectError(await call(t, { url: `/v1/cards/sessions/${s.id}`, auth: payments, purpose: 'payments' }), 404, 'CARDS_SESSION_UNKNOWN');
    } finally {
      clock.advance(-(15 * 60_000 + 24 * 3_600_000 + 1));
    }
  });
});
