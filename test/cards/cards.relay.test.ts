import { mkdtempSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isPrivateAddress, scrubCardNumbers } from '../../src/modules/cards/relay.ts';
import { testApp, type TestApp } from '../support/app.ts';
import { TEST_DIALECT } from '../support/store.ts';
import { call, expectError, expectNoValues } from '../vault/helpers.ts';

/**
 * The relay against a real HTTPS server on loopback standing in for the processor (its CA given
 * through CUSTOS_RELAY_CA): placeholders replaced and escaped, the answer's card numbers replaced
 * by tokens and its headers filtered, the CVV used once, and the attacks on an open proxy refused.
 */
const PAN = '5555555555554444';
const FUTURE = new Date().getUTCFullYear() + 2;

interface Seen {
  method: string;
  url: string;
  headers: Record<string, unknown>;
  body: string;
}

describe(`card relay (${TEST_DIALECT})`, () => {
  let t: TestApp;
  let processor: Server;
  let origin: string;
  let payments: string;
  const seen: Seen[] = [];
  let handshakes = 0;

  const tokenise = async (extra: Record<string, unknown> = {}) => {
    const res = await call(t, { method: 'POST', url: '/v1/cards', auth: payments, purpose: 'payments', payload: { pan: PAN, exp_month: 3, exp_year: FUTURE, cardholder_name: 'Ada Lovelace', cvv: '737', ...extra } });
    expect(res.statusCode, res.body).toBe(201);
    return res.json<{ token: string }>().token;
  };
  const relay = (payload: unknown, auth = payments, headers: Record<string, string> = {}) => call(t, { method: 'POST', url: '/v1/relay', auth, purpose: 'payments', payload, headers });

  beforeAll(async () => {
    const pems = await generate([{ name: 'commonName', value: 'localhost' }], {
      keyType: 'ec',
      curve: 'P-256',
      algorithm: 'sha256',
      extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }] }],
    });
    const dir = mkdtempSync(join(tmpdir(), 'custos-relay-'));
    writeFileSync(join(dir, 'ca.pem'), pems.cert);
    processor = createServer({ cert: pems.cert, key: pems.private }, (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString('utf8')));
      req.on('end', () => {
        seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body });
        if (req.url === '/redirect') {
          res.writeHead(302, { location: 'https://example.org/elsewhere' }).end();
          return;
        }
        if (req.url === '/big') {
          res.writeHead(200, { 'content-type': 'text/plain' }).end('x'.repeat(2 * 1024 * 1024));
          return;
        }
        // Echoes what it got, with the card number, in the body and in headers the relay must drop.
        res.writeHead(200, { 'content-type': 'application/json', 'set-cookie': 'session=abc', 'x-card': PAN, 'x-debug': body.slice(0, 100) });
        res.end(JSON.stringify({ status: 'authorised', echoed: body, card: PAN, other_card: '4111111111111111' }));
      });
    });
    processor.on('secureConnection', () => (handshakes += 1));
    await new Promise<void>((resolve) => processor.listen(0, '127.0.0.1', resolve));
    origin = `https://localhost:${(processor.address() as AddressInfo).port}`;
    t = await testApp({ env: { CUSTOS_RELAY_ALLOWLIST: origin, CUSTOS_RELAY_CA: join(dir, 'ca.pem') } });
    payments = await t.bearer(['payments']);
  });
  afterAll(async () => {
    await t?.close();
    processor?.close();
  });

  it('replaces placeholders in a JSON body and headers; the answer has the card number as its token and only filtered headers', async () => {
    const token = await tokenise();
    const res = await relay({
      url: `${origin}/charge`,
      method: 'POST',
      headers: { 'x-exp': `{{ ${token}.exp_month }}/{{ ${token}.exp_year }}` },
      body: { card: { number: `{{ ${token}.pan }}`, cvc: `{{${token}.cvv}}`, name: `{{ ${token}.cardholder_name }}` }, amount: 1000 },
    });
    expect(res.statusCode, res.body).toBe(200);
    const got = seen.at(-1)!;
    expect(JSON.parse(got.body)).toEqual({ card: { number: PAN, cvc: '737', name: 'Ada Lovelace' }, amount: 1000 });
    expect(got.headers['x-exp']).toBe(`03/${FUTURE}`);
    const answer = res.json<{ status: number; headers: Record<string, string>; body: string }>();
    expect(answer.status).toBe(200);
    expect(answer.headers).toEqual({ 'content-type': 'application/json' });
    expect(answer.body).toContain(token);
    expect(answer.body).toContain('411111******1111');
    expect(answer.body).toContain('\\"cvc\\":\\"***\\"');
    expectNoValues(res, [PAN, '4111111111111111', '737']);
  });

  it('calls in a row reuse one TLS connection to the processor (keep-alive, the checked address pinned): no handshake per call', async () => {
    const token = await tokenise();
    const before = handshakes;
    for (let i = 0; i < 5; i++) expect((await relay({ url: `${origin}/charge`, method: 'POST', body: { n: `{{ ${token}.pan }}` } })).statusCode).toBe(200);
    expect(handshakes - before).toBeLessThanOrEqual(1);
  });

  it('the CVV serves one relay call: a second call asking for it is refused', async () => {
    const token = await tokenise();
    const body = { card: `{{ ${token}.pan }}`, cvc: `{{ ${token}.cvv }}` };
    expect((await relay({ url: `${origin}/charge`, method: 'POST', body })).statusCode).toBe(200);
    expectError(await relay({ url: `${origin}/charge`, method: 'POST', body }), 409, 'CARDS_CVV_UNAVAILABLE');
  });

  it('a cardholder name cannot inject into a form or JSON string body (escaped for the content type)', async () => {
    const token = await tokenise({ cardholder_name: 'Eve"&amount=1&x="' });
    await relay({ url: `${origin}/form`, method: 'POST', headers: { 'content-type': 'application/x-www-form-urlencoded' }, body: `name={{ ${token}.cardholder_name }}&amount=1000` });
    expect(Object.fromEntries(new URLSearchParams(seen.at(-1)!.body))).toEqual({ name: 'Eve"&amount=1&x="', amount: '1000' });
    await relay({ url: `${origin}/json`, method: 'POST', headers: { 'content-type': 'application/json' }, body: `{"name":"{{ ${token}.cardholder_name }}","amount":1000}` });
    expect(JSON.parse(seen.at(-1)!.body)).toEqual({ name: 'Eve"&amount=1&x="', amount: 1000 });
  });

  it('a target off the allow-list is refused before any card is opened (not an open proxy)', async () => {
    const token = await tokenise();
    const before = seen.length;
    for (const url of ['https://example.org/charge', `http://localhost:${new URL(origin).port}/charge`, `https://127.0.0.1:${new URL(origin).port}/charge`, `https://user:pw@${new URL(origin).host}/x`])
      expectError(await relay({ url, method: 'POST', body: { n: `{{ ${token}.pan }}` } }), 403, 'CARDS_RELAY_TARGET_NOT_ALLOWED');
    expect(seen.length).toBe(before);
  });

  it('a redirect from the processor is passed back, not followed, without its Location', async () => {
    const before = seen.length;
    const res = await relay({ url: `${origin}/redirect`, method: 'GET' });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ status: 302, headers: {} });
    expect(seen.length).toBe(before + 1);
  });

  it('oversized bodies are refused both ways', async () => {
    expectError(await relay({ url: `${origin}/charge`, method: 'POST', body: 'x'.repeat(70 * 1024) }), 413, 'CARDS_RELAY_BODY_TOO_LARGE');
    expectError(await relay({ url: `${origin}/big`, method: 'GET' }), 502, 'CARDS_RELAY_RESPONSE_TOO_LARGE');
  });

  it('headers the relay sets itself cannot be supplied (Host, Content-Length)', async () => {
    expectError(await relay({ url: `${origin}/charge`, method: 'POST', headers: { Host: 'internal.example' }, body: {} }), 400, 'CARDS_RELAY_INVALID');
  });

  it('a key without the payments purpose cannot relay card data', async () => {
    const token = await tokenise();
    const account = await t.bearer(['account']);
    const res = await call(t, { method: 'POST', url: '/v1/relay', auth: account, purpose: 'account', payload: { url: `${origin}/charge`, method: 'POST', body: { n: `{{ ${token}.pan }}` } } });
    expectError(res, 403, 'CARDS_PURPOSE_NOT_ALLOWED');
  });

  it('a retry with the same Idempotency-Key gets the first answer and never reaches the processor twice (no double charge)', async () => {
    const token = await tokenise();
    const payload = { url: `${origin}/charge`, method: 'POST', body: { n: `{{ ${token}.pan }}`, c: `{{ ${token}.cvv }}` } };
    const before = seen.length;
    const first = await relay(payload, payments, { 'idempotency-key': `charge-${token}` });
    expect(first.statusCode, first.body).toBe(200);
    const again = await relay(payload, payments, { 'idempotency-key': `charge-${token}` });
    expect(again.statusCode, again.body).toBe(200);
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(again.body).toBe(first.body);
    expect(seen.length).toBe(before + 1);
    const kept = JSON.stringify((await t.runtime.store.db.selectFrom('idempotency_keys').select('response').execute()).map((r) => r.response));
    expect(kept).not.toContain('authorised');
    expect(kept).not.toContain(token);
  });

  it('every relayed token is audited with its fields, its origin kept by detection under the request id', async () => {
    const token = await tokenise();
    await relay({ url: `${origin}/charge`, method: 'POST', body: { n: `{{ ${token}.pan }}` } });
    await t.runtime.audit.chainPending();
    const rows = await t.runtime.store.db.selectFrom('audit_log').select(['fields', 'outcome', 'request_id']).where('action', '=', 'cards.relay').where('record_id', '=', token).execute();
    expect(rows).toHaveLength(1);
    expect(JSON.parse(rows[0]!.fields)).toEqual(['pan']);
    await t.runtime.detection.settle();
    expect(await t.runtime.detection.originsOf([rows[0]!.request_id!])).toMatchObject([{ source: '127.0.0.1' }]);
  });
});

describe('relay helpers', () => {
  it('private and loopback addresses are recognised', () => {
    for (const a of ['10.1.2.3', '127.0.0.1', '169.254.169.254', '192.168.1.1', '172.20.0.1', '::1', 'fd00::1', 'fe80::1']) expect(isPrivateAddress(a), a).toBe(true);
    for (const a of ['93.184.216.34', '2606:2800:220:1::1']) expect(isPrivateAddress(a), a).toBe(false);
  });
  it('known card numbers become tokens, unknown ones are masked, other digits stay', () => {
    const known = new Map([['5555555555554444', 'tok_X']]);
    expect(scrubCardNumbers('a 5555555555554444 b 378282246310005 c 1234567890123', known)).toBe('a tok_X b 378282*****0005 c 1234567890123');
  });
});
