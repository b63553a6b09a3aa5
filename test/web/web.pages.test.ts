import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { chromium, type Browser, type BrowserContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { unQuote } from '../identity/helpers.ts';
import { TEST_DIALECT, type TestDatabase } from '../support/store.ts';
import { CHILD_TIMEOUT, childEnv, freePort, killChildren, newDatabase, rootKey, runCli, sleep, startServer, type ServerChild } from '../resilience/harness.ts';

/**
 * The pages the mails link to, in a real browser (Debian's chromium driven by playwright-core)
 * against the real server over real TLS: each link from a real mail completes its step under the
 * pages' Content-Security-Policy (same-origin script only, nothing inline), and the token leaves
 * the address bar at once. Outside CI the suite is skipped when /usr/bin/chromium is missing; in
 * CI it must run (`.ci/run` installs chromium).
 */
const CHROMIUM = '/usr/bin/chromium';
const present = existsSync(CHROMIUM);
if (!present && process.env.CI !== undefined) throw new Error(`${CHROMIUM} is missing: .ci/run installs it (apt-get install chromium)`);
if (!present) console.warn(`web pages: skipped, ${CHROMIUM} is not installed (apt-get install -y chromium)`);

const PASSWORD = 'violet umbrellas march north at dawn';
const NEW_PASSWORD = 'seven copper kettles hum in the loft';

describe.skipIf(!present)(`pages the mails link to, in chromium over TLS (${TEST_DIALECT})`, { timeout: CHILD_TIMEOUT }, () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  let server: ServerChild;
  let browser: Browser;
  let context: BrowserContext;
  const violations: string[] = [];

  beforeAll(async () => {
    db = await newDatabase();
    env = childEnv(db, { CUSTOS_PLAIN_HTTP: undefined, CUSTOS_TRUST_PROXY: undefined, CUSTOS_ROOT_KEY: rootKey(), CUSTOS_LOG_LEVEL: 'warn', CUSTOS_SHOP_NAME: 'Acme Outdoor', CUSTOS_PORT: String(await freePort()) });
    // The CLI builds invitation links from the same port.
    server = await startServer(env, { tls: true });
    browser = await chromium.launch({ executablePath: CHROMIUM, args: ['--no-sandbox'] });
    context = await browser.newContext({ ignoreHTTPSErrors: true });
  }, CHILD_TIMEOUT);
  afterAll(async () => {
    await context?.close();
    await browser?.close();
    await killChildren();
    await db?.cleanup();
  });

  /** The newest mail to `to` whose subject matches, once the server has written it. */
  async function mailTo(to: string, subject: RegExp): Promise<string> {
    const dir = join(db.dir, 'outbox');
    for (let i = 0; i < 400; i++) {
      const mails = existsSync(dir) ? readdirSync(dir).sort().map((f) => unQuote(readFileSync(join(dir, f), 'utf8'))) : [];
      const mail = mails.filter((m) => /^To: (.*)$/m.exec(m)?.[1]?.includes(to) === true && subject.test(/^Subject: (.*)$/m.exec(m)?.[1] ?? '')).at(-1);
      if (mail !== undefined) return mail;
      await sleep(50);
    }
    throw new Error(`no mail to ${to} matching ${subject}`);
  }
  const linkIn = (mail: string, path: string) => {
    const m = new RegExp(`(https://[^\\s]+${path}#token=[A-Za-z0-9_.-]+)`).exec(mail);
    if (m === null) throw new Error(`no ${path} link in the mail`);
    return m[1]!;
  };
  // API calls share the browser's cookies, so they name their origin as the browser would.
  const api = (path: string, data: unknown) => context.request.post(`${server.url}${path}`, { data, headers: { origin: server.url } });

  async function open(link: string): Promise<Page> {
    const page = await context.newPage();
    page.on('console', (message) => {
      if (/Content[- ]Security[- ]Policy|Refused to/i.test(message.text())) violations.push(message.text());
    });
    const response = await page.goto(link);
    expect(response?.status()).toBe(200);
    const csp = response?.headers()['content-security-policy'] ?? '';
    expect(csp).toContain("script-src 'self'");
    expect(csp).not.toContain('unsafe');
    // The token is gone from the address bar (and so from history) once the script has run.
    await expect.poll(() => page.url(), { timeout: 30_000 }).not.toContain('token');
    return page;
  }
  const status = (page: Page) => page.locator('#status');
  async function choosePassword(page: Page, button: string, password = NEW_PASSWORD, again = password) {
    await page.getByLabel('New password').fill(password);
    await page.getByLabel('The same password again').fill(again);
    await page.getByRole('button', { name: button }).click();
  }

  it('/account/verify-email confirms the address from the sign-up mail', async () => {
    const email = `verify.${Date.now()}@example.com`;
    expect((await api('/v1/auth/signup', { email, password: PASSWORD })).status()).toBe(202);
    const link = linkIn(await mailTo(email, /Confirm/), '/account/verify-email');
    const page = await open(link);
    await page.getByRole('button', { name: 'Confirm my email address' }).click();
    await expect.poll(() => status(page).textContent(), { timeout: 30_000 }).toMatch(/confirmed/);
    expect(await status(page).getAttribute('data-kind')).toBe('done');
    // The link was spent by the page: opening it again fails and says so.
    const again = await open(link);
    await again.getByRole('button', { name: 'Confirm my email address' }).click();
    await expect.poll(() => status(again).getAttribute('data-kind'), { timeout: 30_000 }).toBe('error');
    expect(await status(again).textContent()).toMatch(/new link/);
    await page.close();
    await again.close();
  });

  it('/account/reset-password sets the new password from the reset mail; the old one stops working', async () => {
    const email = `reset.${Date.now()}@example.com`;
    expect((await api('/v1/auth/signup', { email, password: PASSWORD })).status()).toBe(202);
    // Without a token the page asks for the address and mails the link.
    const ask = await open(`${server.url}/account/reset-password`);
    await ask.getByLabel('Email address').fill(email);
    await ask.getByRole('button', { name: 'Mail me a link' }).click();
    await expect.poll(() => status(ask).textContent(), { timeout: 30_000 }).toMatch(/on its way/);
    const link = linkIn(await mailTo(email, /Reset/), '/account/reset-password');
    const page = await open(link);
    await choosePassword(page, 'Set the new password');
    await expect.poll(() => status(page).textContent(), { timeout: 30_000 }).toMatch(/password is changed/);
    expect((await api('/v1/auth/signin', { email, password: NEW_PASSWORD })).status()).toBe(200);
    const old = await api('/v1/auth/signin', { email, password: PASSWORD });
    expect(old.status(), await old.text()).toBe(401);
    await ask.close();
    await page.close();
  });

  it('/admin/accept-invitation sets the staff password from the invitation mail; /admin/reset-password resets it', async () => {
    const email = `staff.${Date.now()}@example.com`;
    const created = await runCli(['staff', 'create', '--email', email, '--role', 'support_agent'], env);
    expect(created.code, created.stderr).toBe(0);
    const link = linkIn(await mailTo(email, /invited/), '/admin/accept-invitation');
    const page = await open(link);
    await choosePassword(page, 'Set my password');
    await expect.poll(() => status(page).textContent(), { timeout: 30_000 }).toMatch(/password is set/);
    const signin = await api('/v1/staff/auth/signin', { email, password: NEW_PASSWORD });
    expect(signin.status(), await signin.text()).toBe(200);
    await page.close();

    // /admin/reset-password works the same for staff, against the staff endpoints.
    const ask = await open(`${server.url}/admin/reset-password`);
    await ask.getByLabel('Email address').fill(email);
    await ask.getByRole('button', { name: 'Mail me a link' }).click();
    await expect.poll(() => status(ask).textContent(), { timeout: 30_000 }).toMatch(/on its way/);
    const reset = await open(linkIn(await mailTo(email, /Reset/), '/admin/reset-password'));
    await choosePassword(reset, 'Set the new password', `${NEW_PASSWORD} again`);
    await expect.poll(() => status(reset).textContent(), { timeout: 30_000 }).toMatch(/password is changed/);
    const after = await api('/v1/staff/auth/signin', { email, password: `${NEW_PASSWORD} again` });
    expect(after.status(), await after.text()).toBe(200);
    await ask.close();
    await reset.close();
  });

  it('/account/claim: a shop invites the customer it stored, the mailed link sets the password, and the customer sees the shop’s data at /v1/me', async () => {
    const key = await runCli(['apikey', 'create', '--name', 'shop', '--purposes', 'account'], env);
    expect(key.code, key.stderr).toBe(0);
    const shop = await browser.newContext({ ignoreHTTPSErrors: true });
    const headers = { authorization: `Bearer ${key.stdout.trim()}` };
    const email = `claim.${Date.now()}@example.com`;
    const stored = await shop.request.post(`${server.url}/v1/customers`, { headers, data: { email, name: 'Ines Varga-Holm' } });
    expect(stored.status(), await stored.text()).toBe(201);
    const { id } = (await stored.json()) as { id: string };
    const invited = await shop.request.post(`${server.url}/v1/customers/${id}/invitation`, { headers });
    expect(invited.status(), await invited.text()).toBe(202);
    await shop.close();

    const link = linkIn(await mailTo(email, /claim/), '/account/claim');
    const page = await open(link);
    await page.getByLabel('New password').fill(NEW_PASSWORD);
    await page.getByLabel('The same password again').fill(NEW_PASSWORD);
    const [request] = await Promise.all([page.waitForRequest('**/v1/auth/claim'), page.getByRole('button', { name: 'Create my account' }).click()]);
    expect(request.headers()['content-type']).toBe('application/json');
    expect(request.postDataJSON()).toEqual({ token: link.split('#token=')[1], password: NEW_PASSWORD });
    await expect.poll(() => status(page).getAttribute('data-kind'), { timeout: 30_000 }).toBe('done');
    expect(await status(page).textContent()).toMatch(/account is ready/);
    await page.close();

    // The customer signs in (a fresh browser profile) and /v1/me is the record the shop stored.
    const person = await browser.newContext({ ignoreHTTPSErrors: true });
    const signin = await person.request.post(`${server.url}/v1/auth/signin`, { data: { email, password: NEW_PASSWORD }, headers: { origin: server.url } });
    expect(signin.status(), await signin.text()).toBe(200);
    const me = await person.request.get(`${server.url}/v1/me`);
    expect(me.status(), await me.text()).toBe(200);
    expect(await me.json()).toMatchObject({ id, email, name: 'Ines Varga-Holm' });
    await person.close();
  });

  it('/account/export: the mailed link downloads the data export once, the page posting the token from the fragment', async () => {
    const key = await runCli(['apikey', 'create', '--name', 'shop', '--purposes', 'account,rights'], env);
    expect(key.code, key.stderr).toBe(0);
    const shop = await browser.newContext({ ignoreHTTPSErrors: true });
    const headers = { authorization: `Bearer ${key.stdout.trim()}` };
    const email = `export.${Date.now()}@example.com`;
    const stored = await shop.request.post(`${server.url}/v1/customers`, { headers, data: { email, name: 'Ines Varga-Holm' } });
    const { id } = (await stored.json()) as { id: string };
    const filed = await shop.request.post(`${server.url}/v1/rights/requests`, { headers, data: { kind: 'access', customer_id: id } });
    expect(filed.status(), await filed.text()).toBe(201);
    await shop.close();

    const link = linkIn(await mailTo(email, /ready to download/), '/account/export');
    const page = await open(link);
    const [download] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: 'Download' }).click()]);
    expect(download.suggestedFilename()).toMatch(/^data-export-\d{4}-\d\d-\d\d-rrq_[0-9A-Z]+\.zip$/);
    await expect.poll(() => status(page).getAttribute('data-kind'), { timeout: 30_000 }).toBe('done');
    await page.close();

    const again = await open(link);
    await again.getByRole('button', { name: 'Download' }).click();
    await expect.poll(() => status(again).getAttribute('data-kind'), { timeout: 30_000 }).toBe('error');
    expect(await status(again).textContent()).toMatch(/used already.*Ask for a new link/);
    await again.close();
  });

  it('mismatched passwords are caught before anything is sent; no page broke its CSP', async () => {
    const page = await open(`${server.url}/account/reset-password#token=x.y`);
    let sent = false;
    page.on('request', (r) => void (r.url().includes('/v1/') && (sent = true)));
    await choosePassword(page, 'Set the new password', NEW_PASSWORD, `${NEW_PASSWORD}!`);
    await expect.poll(() => status(page).textContent(), { timeout: 30_000 }).toMatch(/differ/);
    expect(sent).toBe(false);
    await page.close();
    expect(violations).toEqual([]);
  });
});
