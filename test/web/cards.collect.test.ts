import { existsSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DIALECT, type TestDatabase } from '../support/store.ts';
import { CHILD_TIMEOUT, childEnv, createKey, freePort, killChildren, newDatabase, rootKey, startServer, type ServerChild } from '../resilience/harness.ts';

/**
 * The checkout flow in a real browser (Debian's chromium driven by playwright-core): a storefront
 * on another origin mints a card session from its backend, embeds Custos's card fields in an
 * iframe, the customer types a card, and the token — never the card number — reaches the
 * storefront by postMessage and goes to its backend. The storefront's DOM, scripts and network
 * never hold the card number; the spent key cannot be used again; a page on an origin that is not
 * a storefront cannot frame the fields (CSP frame-ancestors). Custos runs as its real server over
 * TLS. Outside CI the suite is skipped when /usr/bin/chromium is missing; in CI it must run.
 */
const CHROMIUM = '/usr/bin/chromium';
const present = existsSync(CHROMIUM);
if (!present && process.env.CI !== undefined) throw new Error(`${CHROMIUM} is missing: .ci/run installs it (apt-get install chromium)`);

const PAN = '4242424242424242';
const PAN_TYPED = '4242 4242 4242 4242';
const CVV = '917';
const NAME = 'Octavia Brightwater-Lund';
/** A busy machine (chromium, the server and its database on two shared cores) can take seconds per step. */
const SLOW = { timeout: 30_000 };
const EXPIRY = `08 / ${String((new Date().getUTCFullYear() + 2) % 100).padStart(2, '0')}`;

interface Seen {
  method: string;
  url: string;
  body: string;
}

/** A JSON call to Custos from a shop backend (self-signed certificate on loopback, not checked). */
function custos(url: string, method: string, apiKey: string, body?: unknown): Promise<{ status: number; json: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = httpsRequest(
      url,
      {
        method,
        rejectUnauthorized: false,
        headers: { authorization: `Bearer ${apiKey}`, 'custos-purpose': 'payments', ...(payload === undefined ? {} : { 'content-type': 'application/json' }) },
      },
      (res) => {
        let text = '';
        res.setEncoding('utf8').on('data', (d: string) => (text += d));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as Record<string, unknown> }));
      },
    );
    req.on('error', reject);
    req.end(payload);
  });
}

const readBody = (req: IncomingMessage) =>
  new Promise<string>((resolve) => {
    let body = '';
    req.setEncoding('utf8').on('data', (d: string) => (body += d));
    req.on('end', () => resolve(body));
  });

/** The storefront's checkout page: the iframe, and a script that takes the token from a message of Custos's origin only. */
const checkoutPage = (custosOrigin: string, collectUrl: string) => `<!doctype html>
<html><head><meta charset="utf-8"><title>Checkout</title></head>
<body>
<h1>Checkout</h1>
<iframe id="card" title="Card details" src="${collectUrl}" width="420" height="360"></iframe>
<p>Token: <span id="token"></span></p>
<p id="paid"></p>
<script>
window.received = [];
window.addEventListener('message', async (event) => {
  if (event.origin !== ${JSON.stringify(custosOrigin)}) return;
  window.received.push(event.data);
  document.getElementById('token').textContent = event.data.token;
  const res = await fetch('/pay', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ token: event.data.token, session: event.data.session }) });
  document.getElementById('paid').textContent = await res.text();
});
</script>
</body></html>`;

describe.skipIf(!present)(`card fields embedded by a storefront, in chromium (${TEST_DIALECT})`, { timeout: CHILD_TIMEOUT }, () => {
  let db: TestDatabase;
  let server: ServerChild;
  let apiKey: string;
  let browser: Browser;
  let context: BrowserContext;
  let storefront: Server;
  let elsewhere: Server;
  let shopOrigin: string;
  let evilOrigin: string;
  /** Every request the storefront's server received (its backend's view). */
  const seen: Seen[] = [];
  /** Session ids and keys the storefront minted, newest last. */
  const minted: { id: string; key: string; url: string }[] = [];
  const violations: string[] = [];

  async function mint(): Promise<{ id: string; key: string; url: string }> {
    const res = await custos(`${server.url}/v1/cards/sessions`, 'POST', apiKey, { origin: shopOrigin });
    if (res.status !== 201) throw new Error(`mint answered ${res.status}`);
    const s = { id: res.json.id as string, key: res.json.publishable_key as string, url: res.json.collect_url as string };
    minted.push(s);
    return s;
  }

  beforeAll(async () => {
    const shopPort = await freePort();
    shopOrigin = `http://127.0.0.1:${shopPort}`;
    db = await newDatabase();
    const port = await freePort();
    const env = childEnv(db, {
      CUSTOS_PLAIN_HTTP: undefined,
      CUSTOS_TRUST_PROXY: undefined,
      CUSTOS_ROOT_KEY: rootKey(),
      CUSTOS_LOG_LEVEL: 'warn',
      CUSTOS_PORT: String(port),
      CUSTOS_STOREFRONT_ORIGINS: shopOrigin,
    });
    server = await startServer(env, { tls: true });
    apiKey = await createKey(env, ['payments'], 'storefront');

    storefront = createServer((req, res) => {
      void (async () => {
        const body = await readBody(req);
        seen.push({ method: req.method ?? '', url: req.url ?? '', body });
        const url = new URL(req.url ?? '/', shopOrigin);
        if (url.pathname === '/checkout') {
          // The backend mints a key per checkout (or, for the replay, embeds one it minted before).
          const reuse = url.searchParams.get('reuse');
          const session = reuse === null ? await mint() : minted.find((m) => m.id === reuse)!;
          res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(checkoutPage(server.url, session.url));
          return;
        }
        if (url.pathname === '/pay') {
          // The backend checks the token against its session before charging: it holds only the token.
          const { token, session } = JSON.parse(body) as { token: string; session: string };
          const state = await custos(`${server.url}/v1/cards/sessions/${session}`, 'GET', apiKey);
          res.writeHead(200, { 'content-type': 'text/plain' }).end(state.json.status === 'used' && state.json.token === token ? 'paid' : 'refused');
          return;
        }
        res.writeHead(404).end();
      })();
    });
    await new Promise<void>((resolve) => storefront.listen(shopPort, '127.0.0.1', resolve));
    // A site that is no storefront, framing the fields with a key it got hold of.
    elsewhere = createServer((req, res) => {
      void mint().then((s) => res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(checkoutPage(server.url, s.url)));
    });
    await new Promise<void>((resolve) => elsewhere.listen(0, '127.0.0.1', resolve));
    const address = elsewhere.address();
    evilOrigin = `http://127.0.0.1:${typeof address === 'object' && address !== null ? address.port : 0}`;

    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    context = await browser.newContext({ ignoreHTTPSErrors: true });
  }, CHILD_TIMEOUT);
  afterAll(async () => {
    await context?.close();
    await browser?.close();
    storefront?.close();
    elsewhere?.close();
    await killChildren();
    await db?.cleanup();
  });

  async function checkout(path: string): Promise<{ page: Page; storefrontRequests: string[] }> {
    const page = await context.newPage();
    const storefrontRequests: string[] = [];
    page.on('console', (m) => {
      if (/Content[- ]Security[- ]Policy|Refused to|Trusted Type/i.test(m.text())) violations.push(m.text());
    });
    page.on('request', (r) => {
      if (r.url().startsWith(shopOrigin)) storefrontRequests.push(`${r.url()} ${r.postData() ?? ''}`);
    });
    await page.goto(`${shopOrigin}${path}`);
    return { page, storefrontRequests };
  }

  async function enterCard(page: Page): Promise<void> {
    const fields = page.frameLocator('#card');
    await fields.getByLabel('Card number').fill(PAN_TYPED);
    await fields.getByLabel('Expiry (MM / YY)').fill(EXPIRY);
    await fields.getByLabel('Security code').fill(CVV);
    await fields.getByLabel('Name on card').fill(NAME);
    await fields.getByRole('button', { name: 'Use this card' }).click();
  }

  it('the token reaches the storefront by postMessage and its backend; the card number never does', async () => {
    const { page, storefrontRequests } = await checkout('/checkout');
    const collectCalls: string[] = [];
    page.on('request', (r) => {
      if (r.url() === `${server.url}/v1/cards/collect`) collectCalls.push(r.postData() ?? '');
    });
    // The storefront's script cannot reach into the fields (same-origin policy).
    await page.frameLocator('#card').getByLabel('Card number').waitFor();
    expect(await page.evaluate("document.getElementById('card').contentDocument")).toBeNull();

    await enterCard(page);
    await expect.poll(() => page.locator('#paid').textContent(), SLOW).toBe('paid');
    const token = (await page.locator('#token').textContent()) ?? '';
    expect(token).toMatch(/^tok_[0-9A-HJKMNP-TV-Z]{26}$/);
    // The card went to Custos, from the fields' own origin, once.
    expect(collectCalls).toHaveLength(1);
    expect(JSON.parse(collectCalls[0]!)).toMatchObject({ pan: PAN, cvv: CVV, cardholder_name: NAME });
    // The message: the token and what may be shown, nothing else.
    const received = (await page.evaluate('window.received')) as Record<string, unknown>[];
    expect(received).toEqual([{ type: 'custos:card-token', session: minted.at(-1)!.id, token, brand: 'visa', bin: '424242', last4: '4242', exp_month: 8, exp_year: expect.any(Number) }]);
    // Nowhere on the storefront's side: its DOM, its scripts' state, its network, its server.
    const storefrontSide = [await page.content(), JSON.stringify(received), ...storefrontRequests, ...seen.map((s) => `${s.url} ${s.body}`)].join('\n');
    for (const secret of [PAN, PAN_TYPED, CVV, NAME]) expect(storefrontSide).not.toContain(secret);
    expect(seen.some((s) => s.url === '/pay' && s.body.includes(token))).toBe(true);
    // The fields cleared themselves and say so.
    const status = page.frameLocator('#card').locator('#status');
    await expect.poll(() => status.textContent(), SLOW).toMatch(/ending in 4242/);
    expect(await page.frameLocator('#card').getByLabel('Card number', { exact: true }).inputValue()).toBe('');
    await page.close();
  });

  it('the spent key cannot be used again: the fields say so and no token is sent', async () => {
    const spent = minted.at(-1)!;
    const { page } = await checkout(`/checkout?reuse=${spent.id}`);
    const answered = page.waitForResponse(`${server.url}/v1/cards/collect`);
    await enterCard(page);
    const response = await answered;
    expect(response.status()).toBe(409);
    expect(((await response.json()) as { error: { code: string } }).error.code).toBe('CARDS_SESSION_KEY_USED');
    await expect.poll(() => page.frameLocator('#card').locator('#status').textContent(), SLOW).toMatch(/already used/);
    expect(await page.evaluate('window.received')).toEqual([]);
    await page.close();
  });

  it('a page on an origin that is no storefront cannot frame the fields (frame-ancestors); the key it holds stays unspent', async () => {
    const page = await context.newPage();
    const refusals: string[] = [];
    page.on('console', (m) => void (/frame-ancestors/.test(m.text()) && refusals.push(m.text())));
    await page.goto(`${evilOrigin}/`);
    await expect.poll(() => refusals.length, SLOW).toBeGreaterThan(0);
    const frame = page.frames().find((f) => f !== page.mainFrame());
    expect(frame).toBeDefined();
    expect(await frame!.locator('#pan').count()).toBe(0);
    const state = await custos(`${server.url}/v1/cards/sessions/${minted.at(-1)!.id}`, 'GET', apiKey);
    expect(state.json.status).toBe('open');
    await page.close();
  });

  it('the fields ran under their CSP without a violation', () => {
    expect(violations).toEqual([]);
    expect(evilOrigin).not.toBe(shopOrigin);
  });
});
