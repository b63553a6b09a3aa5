import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp } from '../support/app.ts';
import { TEST_DIALECT } from '../support/store.ts';
import { call, expectError, expectNoValues } from '../vault/helpers.ts';

/**
 * The card vault API: tokenise, read (never the PAN), delete, each through the `payments`
 * purpose and audited with the client address; card keys rotate with every card readable
 * throughout; bad card input answers a stable code without echoing the card.
 */
const PAN = '4111111111111111';
const AMEX = '378282246310005';
const NAME = 'Quirinus Zebedaeus Vandersloot';
const FUTURE = new Date().getUTCFullYear() + 3;
const card = (over: Record<string, unknown> = {}) => ({ pan: PAN, exp_month: 7, exp_year: FUTURE, cardholder_name: NAME, ...over });

interface Entry {
  actor: string;
  action: string;
  record_id: string | null;
  fields: string;
  purpose: string | null;
  outcome: string;
  request_id: string | null;
}

describe(`card vault API (${TEST_DIALECT})`, () => {
  let t: TestApp;
  let payments: string;
  let account: string;

  const post = (payload: unknown, auth = payments, purpose: string | undefined = 'payments') => call(t, { method: 'POST', url: '/v1/cards', auth, purpose, payload });
  const entries = async (action: string) => {
    await t.runtime.audit.chainPending();
    return t.runtime.store.db.selectFrom('audit_log').select(['actor', 'action', 'record_id', 'fields', 'purpose', 'outcome', 'request_id']).where('action', '=', action).execute() as Promise<Entry[]>;
  };

  beforeAll(async () => {
    t = await testApp();
    payments = await t.bearer(['payments']);
    account = await t.bearer(['account', 'support']);
  });
  afterAll(async () => t?.close());

  it('tokenises a card: 201 with token, brand, BIN, last four and expiry, and no PAN or name in the answer', async () => {
    const res = await post(card());
    expect(res.statusCode, res.body).toBe(201);
    const body = res.json<Record<string, unknown>>();
    expect(body).toEqual({ token: expect.stringMatching(/^tok_[0-9A-HJKMNP-TV-Z]{26}$/), brand: 'visa', bin: '411111', last4: '1111', exp_month: 7, exp_year: FUTURE });
    expectNoValues(res, [PAN, NAME]);
  });

  it('a format-preserving token keeps the length and last four, fails Luhn, and reads like any token', async () => {
    const res = await post(card({ token_format: 'format_preserving' }));
    expect(res.statusCode, res.body).toBe(201);
    const { token } = res.json<{ token: string }>();
    expect(token).toMatch(/^\d{16}$/);
    expect(token.endsWith('1111')).toBe(true);
    expect(token).not.toBe(PAN);
    const read = await call(t, { url: `/v1/cards/${token}`, auth: payments, purpose: 'payments' });
    expect(read.statusCode, read.body).toBe(200);
    expect(read.json()).toMatchObject({ token, brand: 'visa', last4: '1111', cardholder_name: NAME });
  });

  it('a read returns brand, BIN, last four, expiry and name, never the PAN; the database holds no PAN or name in clear', async () => {
    const { token } = (await post(card({ pan: AMEX }))).json<{ token: string }>();
    const read = await call(t, { url: `/v1/cards/${token}`, auth: payments, purpose: 'payments' });
    expect(read.statusCode, read.body).toBe(200);
    expect(read.json()).toEqual({ token, brand: 'amex', bin: '378282', last4: '0005', exp_month: 7, exp_year: FUTURE, cardholder_name: NAME, customer_id: null });
    expectNoValues(read, [AMEX]);
    const rows = await sql<Record<string, unknown>>`SELECT * FROM cards`.execute(t.runtime.store.db);
    const dump = JSON.stringify(rows.rows);
    expect(dump).not.toContain(AMEX);
    expect(dump).not.toContain(PAN);
    expect(dump).not.toContain(NAME);
  });

  it('an account-only key cannot tokenise or read cards (cards are for the payments purpose alone)', async () => {
    const denied = await post(card(), account, 'account');
    expectError(denied, 403, 'CARDS_PURPOSE_NOT_ALLOWED');
    const refused = await post(card(), account, 'payments');
    expectError(refused, 403, 'POLICY_PURPOSE_NOT_ALLOWED');
    const { token } = (await post(card())).json<{ token: string }>();
    expectError(await call(t, { url: `/v1/cards/${token}`, auth: account, purpose: 'support' }), 403, 'CARDS_PURPOSE_NOT_ALLOWED');
    expectError(await call(t, { method: 'DELETE', url: `/v1/cards/${token}`, auth: account, purpose: 'account' }), 403, 'CARDS_PURPOSE_NOT_ALLOWED');
  });

  it('a retried tokenisation with the same Idempotency-Key returns the first token and stores no second card', async () => {
    const count = async () => Number((await sql<{ n: number }>`SELECT count(*) AS n FROM cards`.execute(t.runtime.store.db)).rows[0]!.n);
    const before = await count();
    const headers = { 'idempotency-key': 'checkout-7731' };
    const first = await call(t, { method: 'POST', url: '/v1/cards', auth: payments, purpose: 'payments', payload: card(), headers });
    const again = await call(t, { method: 'POST', url: '/v1/cards', auth: payments, purpose: 'payments', payload: card(), headers });
    expect(first.statusCode, first.body).toBe(201);
    expect(again.statusCode, again.body).toBe(201);
    expect(again.json()).toEqual(first.json());
    expect(await count()).toBe(before + 1);
  });

  it('a payments key must state its purpose', async () => {
    expectError(await call(t, { method: 'POST', url: '/v1/cards', auth: payments, payload: card() }), 400, 'POLICY_PURPOSE_REQUIRED');
  });

  it('bad card input: each its own code, the card never echoed', async () => {
    const cases: [Record<string, unknown>, number, string][] = [
      [{ pan: '4111111111111112' }, 400, 'CARDS_PAN_LUHN'],
      [{ pan: '4111 1111 1111 1111' }, 400, 'CARDS_PAN_NOT_DIGITS'],
      [{ pan: '41111111111' }, 400, 'CARDS_PAN_LENGTH'],
      [{ pan: '9111111111111110' }, 400, 'CARDS_PAN_BRAND_UNKNOWN'],
      [{ exp_month: 13 }, 400, 'CARDS_EXPIRY_IMPOSSIBLE'],
      [{ exp_year: 2001 }, 400, 'CARDS_EXPIRED'],
      [{ cardholder_name: `pay with ${PAN}` }, 400, 'CARDS_NUMBER_IN_FREE_TEXT'],
    ];
    const before = (await sql<{ n: number }>`SELECT count(*) AS n FROM cards`.execute(t.runtime.store.db)).rows[0]!.n;
    for (const [over, status, code] of cases) {
      const res = await post(card(over));
      expectError(res, status, code);
      expectNoValues(res, ['4111111111111112', '4111 1111 1111 1111', '9111111111111110', PAN, NAME]);
    }
    const after = (await sql<{ n: number }>`SELECT count(*) AS n FROM cards`.execute(t.runtime.store.db)).rows[0]!.n;
    expect(Number(after)).toBe(Number(before));
  });

  it('unknown, malformed and deleted tokens: each its own code', async () => {
    expectError(await call(t, { url: '/v1/cards/tok_00000000000000000000000000', auth: payments, purpose: 'payments' }), 404, 'CARDS_TOKEN_UNKNOWN');
    expectError(await call(t, { url: '/v1/cards/not-a-token', auth: payments, purpose: 'payments' }), 400, 'CARDS_TOKEN_MALFORMED');
    const { token } = (await post(card())).json<{ token: string }>();
    const del = await call(t, { method: 'DELETE', url: `/v1/cards/${token}`, auth: payments, purpose: 'payments' });
    expect(del.statusCode, del.body).toBe(204);
    expectError(await call(t, { url: `/v1/cards/${token}`, auth: payments, purpose: 'payments' }), 410, 'CARDS_TOKEN_DELETED');
    expectError(await call(t, { method: 'DELETE', url: `/v1/cards/${token}`, auth: payments, purpose: 'payments' }), 410, 'CARDS_TOKEN_DELETED');
    const row = await t.runtime.store.db.selectFrom('cards').selectAll().where('token', '=', token).executeTakeFirstOrThrow();
    expect({ ...row, created_at: 'x', deleted_at: row.deleted_at === null ? null : 'set' }).toEqual({
      token,
      customer_id: null,
      brand: null,
      bin: null,
      last4: null,
      expires_at: null,
      key_version: null,
      sealed: null,
      fingerprint: null,
      fingerprint_version: null,
      created_at: 'x',
      deleted_at: 'set',
      removed_by: 'delete',
    });
  });

  it('tokenise, read, delete and denials are audited with their origin (PCI DSS 10.2.2) kept by detection by request id, never card data, never the client address', async () => {
    const { token } = (await call(t, { method: 'POST', url: '/v1/cards', auth: payments, purpose: 'payments', payload: card(), headers: { 'x-forwarded-for': '203.0.113.77' } })).json<{ token: string }>();
    await call(t, { url: `/v1/cards/${token}`, auth: payments, purpose: 'payments' });
    await call(t, { method: 'DELETE', url: `/v1/cards/${token}`, auth: payments, purpose: 'payments' });
    const tokenised = (await entries('cards.tokenise')).find((e) => e.record_id === token)!;
    expect(tokenised).toMatchObject({ purpose: 'payments', outcome: 'success' });
    expect(tokenised.fields).not.toContain('origin');
    // The entry's request id resolves to where it came from, in detection's pruned table.
    await t.runtime.detection.settle();
    const [origin] = await t.runtime.detection.originsOf([tokenised.request_id!]);
    expect(origin).toMatchObject({ source: '203.0.113.77', actor: tokenised.actor });
    expect(JSON.stringify((await sql`SELECT * FROM audit_log`.execute(t.runtime.store.db)).rows)).not.toContain('203.0.113.77');
    expect((await entries('cards.read')).some((e) => e.record_id === token && e.outcome === 'success')).toBe(true);
    expect((await entries('cards.delete')).some((e) => e.record_id === token && e.outcome === 'success')).toBe(true);
    expect((await entries('cards.tokenise')).some((e) => e.outcome === 'denied')).toBe(true);
    const all = JSON.stringify((await sql`SELECT * FROM audit_log`.execute(t.runtime.store.db)).rows);
    expect(all).not.toContain(PAN);
    expect(all).not.toContain(NAME);
  });

  it('card keys rotate: every card stays readable before, during and after re-sealing, and ends under the new version', async () => {
    const tokens = [];
    for (let i = 0; i < 3; i++) tokens.push((await post(card())).json<{ token: string }>().token);
    const added = await t.runtime.cards.rotateKeys();
    expect(added.vault).toBeGreaterThan(1);
    expect(await t.runtime.cards.pendingReseal()).toBeGreaterThan(0);
    expect(await t.runtime.cards.resealBatch(1)).toBe(1);
    for (const token of tokens) expect((await call(t, { url: `/v1/cards/${token}`, auth: payments, purpose: 'payments' })).statusCode).toBe(200);
    while ((await t.runtime.cards.resealBatch(2)) > 0);
    expect(await t.runtime.cards.pendingReseal()).toBe(0);
    const versions = await t.runtime.store.db.selectFrom('cards').select('key_version').where('deleted_at', 'is', null).execute();
    expect(new Set(versions.map((v) => v.key_version))).toEqual(new Set([added.vault]));
    for (const token of tokens) expect((await call(t, { url: `/v1/cards/${token}`, auth: payments, purpose: 'payments' })).statusCode).toBe(200);
  });

  it('a sealed PAN moved to another token fails to open (bound to its token and key version)', async () => {
    const a = (await post(card())).json<{ token: string }>().token;
    const b = (await post(card({ pan: AMEX }))).json<{ token: string }>().token;
    const rowA = await t.runtime.store.db.selectFrom('cards').select(['sealed', 'key_version']).where('token', '=', a).executeTakeFirstOrThrow();
    await t.runtime.store.db.updateTable('cards').set(rowA).where('token', '=', b).execute();
    expectError(await call(t, { url: `/v1/cards/${b}`, auth: payments, purpose: 'payments' }), 500, 'CARDS_INTEGRITY_FAILURE');
  });

  it('a card number in a free-text vault field is refused; a phone is never checked', async () => {
    const owner = await t.bearer(['account']);
    const res = await call(t, { method: 'POST', url: '/v1/customers', auth: owner, payload: { name: `Card 4111-1111-1111-1111`, email: 'cardtext@example.org' } });
    const body = expectError(res, 400, 'CARDS_NUMBER_IN_FREE_TEXT');
    expect(body.error.fields).toEqual(['name']);
    expectNoValues(res, ['4111-1111-1111-1111']);
    const ok = await call(t, { method: 'POST', url: '/v1/customers', auth: owner, payload: { name: 'Plain Name', email: 'cardtext2@example.org', phone: '+49 30 4111111111' } });
    expect(ok.statusCode, ok.body).toBe(201);
  });
});

describe(`card vault deterministic mode (${TEST_DIALECT})`, () => {
  let t: TestApp;
  let payments: string;
  beforeAll(async () => {
    t = await testApp({ env: { CUSTOS_CARDS_DETERMINISTIC: 'true' } });
    payments = await t.bearer(['payments']);
  });
  afterAll(async () => t?.close());

  it('the same card gives the same random token, found through the keyed-hash index, also after the index key rotates', async () => {
    const first = (await call(t, { method: 'POST', url: '/v1/cards', auth: payments, purpose: 'payments', payload: card() })).json<{ token: string }>().token;
    const again = (await call(t, { method: 'POST', url: '/v1/cards', auth: payments, purpose: 'payments', payload: card() })).json<{ token: string }>().token;
    expect(again).toBe(first);
    const other = (await call(t, { method: 'POST', url: '/v1/cards', auth: payments, purpose: 'payments', payload: card({ pan: AMEX }) })).json<{ token: string }>().token;
    expect(other).not.toBe(first);
    await t.runtime.cards.rotateKeys();
    const during = (await call(t, { method: 'POST', url: '/v1/cards', auth: payments, purpose: 'payments', payload: card() })).json<{ token: string }>().token;
    expect(during).toBe(first);
    while ((await t.runtime.cards.resealBatch(10)) > 0);
    const after = (await call(t, { method: 'POST', url: '/v1/cards', auth: payments, purpose: 'payments', payload: card() })).json<{ token: string }>().token;
    expect(after).toBe(first);
    const row = await t.runtime.store.db.selectFrom('cards').selectAll().where('token', '=', first).executeTakeFirstOrThrow();
    expect(row.fingerprint).not.toContain(PAN);
    expect(row.fingerprint_version).toBe(2);
  });
});

describe(`card origins with the detection rules off (${TEST_DIALECT})`, () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await testApp({ env: { CUSTOS_DETECTION: 'false' } });
  });
  afterAll(async () => t?.close());

  it('each card request still has its origin kept by request id (PCI DSS 10.2.2), outside the audit log', async () => {
    const payments = await t.bearer(['payments']);
    const res = await call(t, { method: 'POST', url: '/v1/cards', auth: payments, purpose: 'payments', payload: card(), headers: { 'x-forwarded-for': '198.51.100.23' } });
    expect(res.statusCode, res.body).toBe(201);
    await t.runtime.audit.chainPending();
    const entry = await t.runtime.store.db.selectFrom('audit_log').select(['request_id', 'fields']).where('action', '=', 'cards.tokenise').executeTakeFirstOrThrow();
    await t.runtime.detection.settle();
    expect(await t.runtime.detection.originsOf([entry.request_id!])).toMatchObject([{ source: '198.51.100.23' }]);
    expect(JSON.stringify(await t.runtime.store.db.selectFrom('audit_log').selectAll().execute())).not.toContain('198.51.100.23');
  });
});
