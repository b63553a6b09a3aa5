import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/kernel/clock.ts';
import { testApp, type TestApp } from '../support/app.ts';
import { apiKey, call, census, CORE_TABLES, expectError, person, seed } from './helpers.ts';

/**
 * Input hygiene on every write (issue 8 §4): text that hides what it is (control characters,
 * unpaired surrogates, invisible characters in contact data), impossible dates of birth, money as
 * a JSON number, bodies that are not JSON, and prototype keys are each refused with a stable code
 * naming the field, and nothing of the request is stored.
 */
const TODAY = new Date('2026-06-15T12:00:00Z');

describe('vault input hygiene', () => {
  let t: TestApp;
  let auth: string;
  let owner: string;
  beforeAll(async () => {
    t = await testApp({ clock: fixedClock(TODAY) });
    auth = (await apiKey(t, ['account'])).auth;
    owner = (await seed(t, auth, person('hyg'))).id;
  });
  afterAll(async () => t.close());

  type Write = { url: string; method: 'POST' | 'PATCH'; body: Record<string, unknown> };
  const customer = (over: Record<string, unknown>): Write => ({ url: '/v1/customers', method: 'POST', body: { ...person().customer, ...over } });
  const patch = (over: Record<string, unknown>): Write => ({ url: `/v1/customers/${owner}`, method: 'PATCH', body: over });
  const address = (over: Record<string, unknown>): Write => ({ url: `/v1/customers/${owner}/addresses`, method: 'POST', body: { ...person().address, ...over } });
  const order = (over: Record<string, unknown>): Write => ({ url: `/v1/customers/${owner}/orders`, method: 'POST', body: { ...person().order, ...over } });
  const item = (over: Record<string, unknown>) => [{ ...person().order.items[0], ...over }];
  const shipping = (over: Record<string, unknown>) => ({ ...person().order.shipping_address, ...over });

  /** Sends a write that must be refused with `code` naming `fields`; proves nothing was stored. */
  async function refused(w: Write, code: string, fields: string[], options: { raw?: string; headers?: Record<string, string> } = {}) {
    const before = await census(t, CORE_TABLES);
    const res = await call(t, {
      method: w.method,
      url: w.url,
      auth,
      purpose: 'account',
      payload: options.raw ?? JSON.stringify(w.body),
      headers: { 'content-type': 'application/json', ...options.headers },
    });
    const body = expectError(res, code.startsWith('REQUEST_UNSUPPORTED') ? 415 : 400, code);
    if (fields.length > 0) expect(body.error.fields, JSON.stringify(w.body).slice(0, 80)).toEqual(fields);
    for (const f of fields) expect(body.error.message).toContain(f);
    expect(await census(t, CORE_TABLES)).toEqual(before);
    return body;
  }

  async function accepted(w: Write) {
    const res = await call(t, { method: w.method, url: w.url, auth, purpose: 'account', payload: w.body });
    expect(res.statusCode, res.body).toBe(w.method === 'POST' ? 201 : 200);
    return res.json<{ id: string }>();
  }

  it('control characters in free text (NUL, ESC, CR, DEL, C1) are refused with VAULT_TEXT_CONTROL_CHARACTER naming the field', async () => {
    for (const c of ['\u0000', '\u001b[2J', '\r', '\u0007', '\u007f', '\u0085', '\u009b'])
      for (const [w, field] of [
        [customer({ name: `Ottilie${c}Quenzel` }), 'name'],
        [patch({ name: `Ottilie${c}` }), 'name'],
        [address({ line1: `Kastanienallee 1${c}` }), 'line1'],
        [order({ items: item({ name: `Tee${c}` }) }), 'items.0.name'],
        [order({ shipping_address: shipping({ city: `${c}Wuppertal` }) }), 'shipping_address.city'],
      ] as const)
        await refused(w, 'VAULT_TEXT_CONTROL_CHARACTER', [field]);
  });

  it('tab and newline in free text are accepted', async () => {
    await accepted(address({ line2: 'Hinterhaus\tlinks\n2. OG' }));
  });

  it('an unpaired UTF-16 surrogate anywhere in a body is refused with REQUEST_TEXT_ILL_FORMED naming where', async () => {
    await refused(customer({ name: 'Ottilie \ud800 Quenzel' }), 'REQUEST_TEXT_ILL_FORMED', ['name']);
    await refused(customer({ email: 'ottilie\udfff@marbach-example.org' }), 'REQUEST_TEXT_ILL_FORMED', ['email']);
    await refused(order({ items: item({ sku: 'TEE\udc00' }) }), 'REQUEST_TEXT_ILL_FORMED', ['items.0.sku']);
    // An escape written by hand, and a high surrogate at the very end.
    await refused(patch({}), 'REQUEST_TEXT_ILL_FORMED', ['name'], { raw: '{"name":"Ottilie\\uD83D"}' });
    // A key is text too.
    await refused(customer({}), 'REQUEST_TEXT_ILL_FORMED', ['(body)'], { raw: '{"na\\ud800me":"x"}' });
    // Outside the vault: sign-up's password.
    const res = await t.app.inject({ method: 'POST', url: '/v1/auth/signup', payload: { email: 'surrogate@marbach-example.org', password: 'correct horse \ud800 battery staple' } });
    expect(expectError(res, 400, 'REQUEST_TEXT_ILL_FORMED').error.fields).toEqual(['password']);
    // A well-formed pair (an emoji written as two escapes) is fine.
    await accepted(address({ line2: 'Haus \ud83c\udfe0' }));
  });

  it('invisible and format characters in emails and phones are refused with VAULT_CONTACT_INVISIBLE_CHARACTER', async () => {
    const email = person().customer.email;
    for (const c of ['\u200b', '\u200c', '\u200d', '\u2060', '\ufeff', '\u00ad', '\u202e', '\u2066', '\u200f', '\u061c', '\u0000', '\u3164']) {
      await refused(customer({ email: `${email.slice(0, 3)}${c}${email.slice(3)}` }), 'VAULT_CONTACT_INVISIBLE_CHARACTER', ['email']);
      await refused(customer({ email: `${c}${email}` }), 'VAULT_CONTACT_INVISIBLE_CHARACTER', ['email']);
      await refused(patch({ phone: `+49 151${c} 2345 6789` }), 'VAULT_CONTACT_INVISIBLE_CHARACTER', ['phone']);
    }
  });

  it('a date of birth in the future or more than 130 years back is refused with VAULT_DATE_OF_BIRTH_OUT_OF_RANGE', async () => {
    for (const dob of ['2026-06-17', '2027-01-01', '9999-12-31', '1896-06-13', '0001-01-01']) {
      await refused(customer({ date_of_birth: dob }), 'VAULT_DATE_OF_BIRTH_OUT_OF_RANGE', ['date_of_birth']);
      await refused(patch({ date_of_birth: dob }), 'VAULT_DATE_OF_BIRTH_OUT_OF_RANGE', ['date_of_birth']);
    }
    // Born today (anywhere on Earth), and exactly 130 years ago.
    await accepted(customer({ date_of_birth: '2026-06-15' }));
    await accepted(customer({ date_of_birth: '2026-06-16' }));
    await accepted(customer({ date_of_birth: '1896-06-15' }));
  });

  it('money as a JSON number is refused with VAULT_DECIMAL_AS_NUMBER (49.90 would have become "49.9")', async () => {
    await refused(order({ total: 49.9 }), 'VAULT_DECIMAL_AS_NUMBER', ['total']);
    await refused(order({ total: 129 }), 'VAULT_DECIMAL_AS_NUMBER', ['total']);
    await refused(order({ items: item({ unit_price: 24.95 }) }), 'VAULT_DECIMAL_AS_NUMBER', ['items.0.unit_price']);
    const { id } = await accepted(order({ total: '49.90' }));
    const read = await call(t, { url: `/v1/orders/${id}`, auth, purpose: 'account' });
    expect(read.json<{ total: string }>().total).toBe('49.90');
  });

  it('a text/plain body is refused with 415 like a form body', async () => {
    for (const w of [customer({}), patch({ name: 'Ottilie' }), address({}), order({})])
      await refused(w, 'REQUEST_UNSUPPORTED_MEDIA_TYPE', [], { headers: { 'content-type': 'text/plain' } });
    await refused(customer({}), 'REQUEST_UNSUPPORTED_MEDIA_TYPE', [], { headers: { 'content-type': 'text/plain; charset=utf-8' } });
  });

  it('a body using __proto__ is refused with REQUEST_PROTOTYPE_KEY and a message that says so, not "not valid JSON"', async () => {
    const text = JSON.stringify(person().customer);
    for (const [raw, field] of [
      [`{"__proto__":{"admin":true},${text.slice(1)}`, '__proto__'],
      [`${text.slice(0, -1)},"nickname":{"__proto__":{"x":1}}}`, 'nickname.__proto__'],
      [`{"\\u005f_proto__":{"admin":true},${text.slice(1)}`, '__proto__'],
      [`{"constructor":{"prototype":{"admin":true}},${text.slice(1)}`, 'constructor'],
    ] as const) {
      const body = await refused(customer({}), 'REQUEST_PROTOTYPE_KEY', [field], { raw });
      expect(body.error.message).toMatch(/__proto__|constructor\.prototype/);
      expect(body.error.message).not.toMatch(/not valid JSON/i);
    }
    const { items: _, ...rest } = person().order;
    const items = `{"items":[{"__proto__":{}}],${JSON.stringify(rest).slice(1)}`;
    await refused(order({}), 'REQUEST_PROTOTYPE_KEY', ['items.0.__proto__'], { raw: items });
  });
});
