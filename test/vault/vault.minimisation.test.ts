import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp } from '../support/app.ts';
import { apiKey, call, census, CORE_TABLES, expectError, expectNoValues, person, personalStrings, seed, unknownId, UPPER_SNAKE } from './helpers.ts';

/**
 * Data minimisation and bad input (GDPR Art. 5(1)(c); OWASP ASVS 5.0 2.2.x input validation): a
 * field the inventory does not declare is refused and nothing of that request is stored; wrong
 * types, malformed JSON, oversized bodies and malformed or unknown ids get stable codes; and no
 * error ever echoes a submitted value (error messages name fields, never values).
 */
describe('vault API minimisation and bad input', () => {
  let t: TestApp;
  let auth: string;
  let s: Awaited<ReturnType<typeof seed>>;
  beforeAll(async () => {
    t = await testApp();
    auth = (await apiKey(t, ['account'])).auth;
    s = await seed(t, auth, person('min'));
  });
  afterAll(async () => t.close());

  const writes = () => {
    const p = person();
    return [
      { name: 'create customer', method: 'POST' as const, url: '/v1/customers', body: p.customer as Record<string, unknown>, p },
      { name: 'patch customer', method: 'PATCH' as const, url: `/v1/customers/${s.id}`, body: { name: p.customer.name, email: p.customer.email } as Record<string, unknown>, p },
      { name: 'add address', method: 'POST' as const, url: `/v1/customers/${s.id}/addresses`, body: p.address as Record<string, unknown>, p },
      { name: 'add order', method: 'POST' as const, url: `/v1/customers/${s.id}/orders`, body: p.order as Record<string, unknown>, p },
    ];
  };

  /** Sends a refused write and proves nothing of it was stored and nothing of it was echoed. */
  async function refused(w: { method: 'POST' | 'PATCH'; url: string; p: ReturnType<typeof person> }, payload: unknown, status: number, code: string, headers?: Record<string, string>) {
    const before = await census(t, CORE_TABLES);
    const res = await call(t, { method: w.method, url: w.url, auth, purpose: 'account', payload, ...(headers === undefined ? {} : { headers }) });
    const body = expectError(res, status, code);
    expectNoValues(res, personalStrings(w.p));
    expect(await census(t, CORE_TABLES)).toEqual(before);
    return body;
  }

  it('an undeclared field is refused with 400 VAULT_FIELD_UNDECLARED naming it; nothing is stored', async () => {
    for (const w of writes()) {
      const body = await refused(w, { ...w.body, ssn: '078-05-1120' }, 400, 'VAULT_FIELD_UNDECLARED');
      expect(body.error.message, w.name).toContain('ssn');
      expect(body.error.fields, w.name).toEqual(['ssn']);
      expect(JSON.stringify(body)).not.toContain('078-05-1120');
    }
  });

  it('an undeclared nested field (items[0].colour, shipping_address.floor) is refused and named', async () => {
    const [, , , order] = writes();
    const items = [{ ...order!.p.order.items[0]!, colour: 'Mitternachtsblau' }];
    const a = await refused(order!, { ...order!.body, items }, 400, 'VAULT_FIELD_UNDECLARED');
    expect(a.error.fields).toEqual(['items.0.colour']);
    expect(JSON.stringify(a)).not.toContain('Mitternachtsblau');
    const shipping = { ...order!.p.order.shipping_address, floor: 'Dachgeschoss Nord' };
    const b = await refused(order!, { ...order!.body, shipping_address: shipping }, 400, 'VAULT_FIELD_UNDECLARED');
    expect(b.error.fields).toEqual(['shipping_address.floor']);
    expect(JSON.stringify(b)).not.toContain('Dachgeschoss');
  });

  it('an undeclared field whose name is itself personal data is not echoed', async () => {
    const [create] = writes();
    const body = await refused(create!, { ...create!.body, 'leaked.person@example.org': true, 'Hans Peter Wurst': 1 }, 400, 'VAULT_FIELD_UNDECLARED');
    expectNoValues(JSON.stringify(body), ['leaked.person@example.org', 'Hans Peter Wurst']);
  });

  it('malformed JSON is refused with 400 REQUEST_MALFORMED_JSON on every write; nothing is stored', async () => {
    const json = { 'content-type': 'application/json' };
    for (const w of writes()) {
      const text = JSON.stringify(w.body);
      await refused(w, text.slice(0, -3), 400, 'REQUEST_MALFORMED_JSON', json);
      await refused(w, `${text}}`, 400, 'REQUEST_MALFORMED_JSON', json);
      await refused(w, text.replace('{', "{'"), 400, 'REQUEST_MALFORMED_JSON', json);
      await refused(w, '', 400, 'REQUEST_MALFORMED_JSON', json);
    }
  });

  it('a body that is not JSON (text/plain included) is refused with 415 and stores nothing', async () => {
    for (const w of writes()) {
      for (const type of ['application/xml', 'application/x-www-form-urlencoded', 'multipart/form-data; boundary=x', 'image/png', 'application/json-patch+json', 'text/plain'])
        await refused(w, JSON.stringify(w.body), 415, 'REQUEST_UNSUPPORTED_MEDIA_TYPE', { 'content-type': type });
    }
  });

  it('wrong types and formats are refused with 400 VAULT_FIELD_INVALID naming the field, never the value', async () => {
    const [create, patch, address, order] = writes();
    const cases: [typeof create, Record<string, unknown>, string][] = [
      [create, { ...create!.body, email: 42 }, 'email'],
      [create, { ...create!.body, email: 'ottilie-at-marbach-example.org' }, 'email'],
      [create, { ...create!.body, phone: 'call Ottilie after six' }, 'phone'],
      [create, { ...create!.body, date_of_birth: '07.03.1984' }, 'date_of_birth'],
      [create, { ...create!.body, locale: 'Deutsch (Deutschland)' }, 'locale'],
      [create, { ...create!.body, name: 'N'.repeat(201) }, 'name'],
      [create, { ...create!.body, name: ['Ottilie', 'Quenzel'] }, 'name'],
      [patch, { name: { first: 'Ottilie Quenzel-Marbach' } }, 'name'],
      [address, { ...address!.body, country: 'Deutschland' }, 'country'],
      [address, { ...address!.body, line1: undefined }, 'line1'],
      [order, { ...order!.body, status: 'misplaced' }, 'status'],
      [order, { ...order!.body, total: 'einhundert' }, 'total'],
      [order, { ...order!.body, placed_at: '2025-05-04 10:11' }, 'placed_at'],
      [order, { ...order!.body, items: [{ ...order!.p.order.items[0], quantity: 0 }] }, 'items.0.quantity'],
      [order, { ...order!.body, items: { sku: 'TEE' } }, 'items'],
    ];
    for (const [w, payload, field] of cases) {
      const body = await refused(w!, payload, 400, 'VAULT_FIELD_INVALID');
      expect(body.error.message, `${field}: ${body.error.message}`).toContain(field);
      expectNoValues(JSON.stringify(body), ['ottilie-at-marbach', 'call Ottilie', '07.03.1984', 'Deutsch (Deutschland)', 'NNNNNNNN', 'Deutschland', 'misplaced', 'einhundert', '10:11']);
    }
  });

  it('a body that is not an object is refused with 400 VAULT_FIELD_INVALID', async () => {
    for (const w of writes()) for (const payload of ['[]', '"Ottilie Quenzel"', '42', 'null', 'true'])
      await refused(w, payload, 400, 'VAULT_FIELD_INVALID', { 'content-type': 'application/json' });
  });

  it('a body over CUSTOS_BODY_LIMIT is refused with 413 REQUEST_TOO_LARGE; nothing is stored', async () => {
    const small = await testApp({ env: { CUSTOS_BODY_LIMIT: '2048' } });
    try {
      const key = (await apiKey(small, ['account'])).auth;
      const owner = await seed(small, key, person('small'));
      const p = person('large');
      const pad = 'Z'.repeat(2100);
      const attempts = [
        { method: 'POST' as const, url: '/v1/customers', payload: { ...p.customer, name: `${p.customer.name} ${pad}` } },
        { method: 'PATCH' as const, url: `/v1/customers/${owner.id}`, payload: { name: `${p.customer.name} ${pad}` } },
        { method: 'POST' as const, url: `/v1/customers/${owner.id}/addresses`, payload: { ...p.address, line2: pad } },
        { method: 'POST' as const, url: `/v1/customers/${owner.id}/orders`, payload: { ...p.order, number: pad } },
      ];
      const before = await census(small, CORE_TABLES);
      for (const a of attempts) {
        const res = await call(small, { ...a, auth: key, purpose: 'account' });
        expectError(res, 413, 'REQUEST_TOO_LARGE');
        expectNoValues(res, personalStrings(p));
      }
      expect(await census(small, CORE_TABLES)).toEqual(before);
      // Just under the limit still works.
      const ok = await call(small, { method: 'POST', url: '/v1/customers', auth: key, payload: p.customer });
      expect(ok.statusCode).toBe(201);
    } finally {
      await small.close();
    }
  });

  it('malformed ids are refused with 400 VAULT_ID_MALFORMED on every id route', async () => {
    const good = s.id.slice(4);
    const bad = [
      'not-an-id',
      `cus_${good.slice(1)}`,
      `cus_${good}0`,
      `cus_${good.toLowerCase()}`,
      `cus_${good.slice(0, -1)}U`,
      `ord_${good}`,
      `CUS_${good}`,
      encodeURIComponent(`cus_${good}'--`),
      encodeURIComponent('../../etc/passwd'),
      '%00',
      `cus_${'Z'.repeat(90)}`,
    ];
    const routes = (id: string) => [
      { method: 'GET' as const, url: `/v1/customers/${id}` },
      { method: 'PATCH' as const, url: `/v1/customers/${id}`, payload: { name: 'X' } },
      { method: 'POST' as const, url: `/v1/customers/${id}/addresses`, payload: person().address },
      { method: 'POST' as const, url: `/v1/customers/${id}/orders`, payload: person().order },
      { method: 'GET' as const, url: `/v1/customers/${id}/orders` },
      { method: 'GET' as const, url: `/v1/customers/${id}/access-log` },
    ];
    const before = await census(t, CORE_TABLES);
    for (const id of bad) for (const r of routes(id)) expectError(await call(t, { ...r, auth, purpose: 'account' }), 400, 'VAULT_ID_MALFORMED');
    for (const id of bad.filter((b) => b !== `ord_${good}`).map((b) => b.replace(/^cus_/, 'ord_')).concat([s.id, s.addressId]))
      expectError(await call(t, { url: `/v1/orders/${id}`, auth, purpose: 'account' }), 400, 'VAULT_ID_MALFORMED');
    for (const cursor of ['nope', s.id, `ord_${good.toLowerCase()}`])
      expectError(await call(t, { url: `/v1/customers/${s.id}/orders?cursor=${cursor}`, auth, purpose: 'account' }), 400, 'VAULT_ID_MALFORMED');
    expect(await census(t, CORE_TABLES)).toEqual(before);
  });

  const marker = 'ottiliequenzel';
  const oddPaths: [string, string][] = [
    ['an overlong customer id', `/v1/customers/cus_${marker}${'Z'.repeat(200)}`],
    ['an overlong customer id under /orders', `/v1/customers/cus_${marker}${'Z'.repeat(200)}/orders`],
    ['an overlong order id', `/v1/orders/ord_${marker}${'Z'.repeat(200)}`],
    ['a truncated percent-escape', `/v1/customers/${marker}%E0%A4%A`],
    ['a lone percent sign', `/v1/customers/${marker}%`],
  ];
  for (const [name, url] of oddPaths) {
    it(`${name} gets a 4xx in the one error shape, without echoing the path`, async () => {
      const res = await call(t, { url, auth, purpose: 'account' });
      expect(res.statusCode, res.body.slice(0, 200)).toBeGreaterThanOrEqual(400);
      expect(res.statusCode).toBeLessThan(500);
      const body = res.json<{ error: { code?: unknown; message?: unknown; request_id?: unknown } }>();
      expect(typeof body.error, res.body.slice(0, 200)).toBe('object');
      expect(body.error.code).toMatch(UPPER_SNAKE);
      expect(body.error.request_id).toBe(res.headers['x-request-id']);
      expectNoValues(res, [marker]);
    });
  }

  it('unknown ids answer 404 VAULT_NOT_FOUND on every id route; writes store nothing', async () => {
    const cus = unknownId('cus');
    const p = person('unknown');
    const routes = [
      { method: 'GET' as const, url: `/v1/customers/${cus}` },
      { method: 'PATCH' as const, url: `/v1/customers/${cus}`, payload: { name: p.customer.name } },
      { method: 'POST' as const, url: `/v1/customers/${cus}/addresses`, payload: p.address },
      { method: 'POST' as const, url: `/v1/customers/${cus}/orders`, payload: p.order },
      { method: 'GET' as const, url: `/v1/customers/${cus}/orders` },
      { method: 'GET' as const, url: `/v1/customers/${cus}/access-log` },
      { method: 'GET' as const, url: `/v1/orders/${unknownId('ord')}` },
      // A real customer's id does not name an order, nor the other way round.
      { method: 'GET' as const, url: `/v1/orders/${s.orderId.replace(/.$/, (c) => (c === '0' ? '1' : '0'))}` },
    ];
    const before = await census(t, CORE_TABLES);
    for (const r of routes) {
      const res = await call(t, { ...r, auth, purpose: 'account' });
      expectError(res, 404, 'VAULT_NOT_FOUND');
      expectNoValues(res, personalStrings(p));
    }
    expect(await census(t, CORE_TABLES)).toEqual(before);
  });

  it('query parameters out of range are refused with 400, never a 5xx', async () => {
    const queries = [
      `/v1/customers/${s.id}/orders?limit=0`,
      `/v1/customers/${s.id}/orders?limit=201`,
      `/v1/customers/${s.id}/orders?limit=abc`,
      `/v1/customers/${s.id}/orders?limit=1.5`,
      `/v1/customers/${s.id}/access-log?limit=0`,
      `/v1/customers/${s.id}/access-log?limit=501`,
      `/v1/customers/${s.id}/access-log?before=0`,
      `/v1/customers/${s.id}/access-log?before=-1`,
      `/v1/customers/${s.id}/access-log?before=abc`,
    ];
    for (const url of queries) {
      const res = await call(t, { url, auth, purpose: 'account' });
      expect(res.statusCode, `${url}: ${res.body}`).toBe(400);
    }
  });

  it('an access-log cursor beyond any 64-bit id is answered without a 5xx', async () => {
    for (const before of ['1e20', '99999999999999999999', '9223372036854775808', '1e308']) {
      const res = await call(t, { url: `/v1/customers/${s.id}/access-log?before=${before}`, auth, purpose: 'account' });
      expect(res.statusCode, `before=${before}: ${res.body}`).toBeLessThan(500);
    }
  });
});
