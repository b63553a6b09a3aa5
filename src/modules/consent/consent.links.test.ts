import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authApp, type AuthTest } from '../../../test/identity/helpers.ts';
import { TEST_DIALECT } from '../../../test/support/store.ts';
import { census, person } from '../../../test/vault/helpers.ts';

/**
 * One-click unsubscribe (RFC 8058) and double opt-in: signed, expiring links that act without a
 * sign-in; forged, altered, expired or misused links record nothing.
 */
let t: AuthTest;
let shop: string;
const MS_DAY = 24 * 3600 * 1000;

beforeAll(async () => {
  const file = join(mkdtempSync(join(tmpdir(), 'custos-inv-')), 'inventory.yaml');
  writeFileSync(file, ['version: 1', 'extends: default', 'purposes:', '  marketing:', '    description:', '      en: Newsletters and offers.', '      de: Newsletter und Angebote.', '    double_opt_in: true', ''].join('\n'));
  t = await authApp({ CUSTOS_INVENTORY: file });
  shop = await t.bearer(['account']);
});
afterAll(() => t.close());

async function customerWith(purpose: string): Promise<string> {
  const created = await t.app.inject({ method: 'POST', url: '/v1/customers', headers: { authorization: shop, 'custos-purpose': 'account' }, payload: person().customer });
  const id = created.json<{ id: string }>().id;
  const res = await t.app.inject({ method: 'POST', url: `/v1/customers/${id}/consents`, headers: { authorization: shop }, payload: { purpose, granted: true, source: 'web_form', notice_version: 1 } });
  expect(res.statusCode, res.body).toBe(201);
  return id;
}
const stateOf = async (id: string, purpose: string) =>
  (await t.app.inject({ url: `/v1/customers/${id}/consents`, headers: { authorization: shop } })).json<{ purposes: { purpose: string; status: string; in_force: boolean; source: string }[] }>().purposes.find((p) => p.purpose === purpose)!;
const oneClick = (url: string, payload = 'List-Unsubscribe=One-Click', type = 'application/x-www-form-urlencoded') =>
  t.app.inject({ method: 'POST', url: new URL(url).pathname, headers: { 'content-type': type }, payload });
const ledger = async () => (await census(t, ['consent_ledger']))['consent_ledger'];

describe(`unsubscribe links (${TEST_DIALECT})`, () => {
  it('GET shows a page and changes nothing; the RFC 8058 POST (no cookie, no Origin) withdraws without a redirect', async () => {
    const id = await customerWith('third_party_sharing');
    const url = t.runtime.consent.unsubscribeUrl(id, 'third_party_sharing');
    const shown = await t.app.inject({ url: new URL(url).pathname });
    expect(shown.statusCode).toBe(200);
    expect(shown.headers['content-type']).toMatch(/^text\/html/);
    expect(shown.headers['content-security-policy']).toContain("form-action 'self'");
    expect((await stateOf(id, 'third_party_sharing')).in_force).toBe(true);
    const done = await oneClick(url);
    expect(done.statusCode).toBe(200);
    expect(done.headers.location).toBeUndefined();
    expect(await stateOf(id, 'third_party_sharing')).toMatchObject({ status: 'withdrawn', source: 'unsubscribe_link', in_force: false });
    const again = await oneClick(url, '--b\r\nContent-Disposition: form-data; name="List-Unsubscribe"\r\n\r\nOne-Click\r\n--b--\r\n', 'multipart/form-data; boundary=b');
    expect(again.statusCode).toBe(200);
  });

  it('a forged, altered or misused link is refused and records nothing', async () => {
    const id = await customerWith('third_party_sharing');
    const url = t.runtime.consent.unsubscribeUrl(id, 'third_party_sharing');
    const token = new URL(url).pathname.split('/').at(-1)!;
    const [body, sig] = token.split('.') as [string, string];
    const claims = JSON.parse(Buffer.from(body, 'base64url').toString()) as Record<string, unknown>;
    const other = Buffer.from(JSON.stringify({ ...claims, p: 'analytics' })).toString('base64url');
    const before = await ledger();
    for (const bad of [`${other}.${sig}`, `${body}.${sig.slice(0, 10)}${sig[10] === 'A' ? 'B' : 'A'}${sig.slice(11)}`, body, `${body}.`, 'x'.repeat(50)]) {
      const res = await oneClick(`https://shop.example/v1/unsubscribe/${bad}`);
      expect(res.json<{ error: { code: string } }>().error.code).toBe('CONSENT_LINK_INVALID');
    }
    expect(await ledger()).toBe(before);
    expect((await stateOf(id, 'third_party_sharing')).in_force).toBe(true);
  });

  it('a link still works after 60 days and has expired after 90, recording nothing', async () => {
    const id = await customerWith('third_party_sharing');
    const url = t.runtime.consent.unsubscribeUrl(id, 'third_party_sharing');
    t.clock.advance(61 * MS_DAY);
    expect((await t.app.inject({ url: new URL(url).pathname })).statusCode).toBe(200);
    t.clock.advance(30 * MS_DAY);
    const before = await ledger();
    const res = await oneClick(url);
    expect(res.statusCode).toBe(410);
    expect(res.json<{ error: { code: string } }>().error.code).toBe('CONSENT_LINK_EXPIRED');
    expect(await ledger()).toBe(before);
  });
});

describe(`double opt-in (${TEST_DIALECT})`, () => {
  it('a grant stays pending until the mailed link is followed; the link works once and is no unsubscribe link', async () => {
    const id = await customerWith('marketing');
    expect(await stateOf(id, 'marketing')).toMatchObject({ status: 'pending', in_force: false });
    const mail = (await t.outbox()).filter((m) => /please confirm/.test(m.subject)).at(-1);
    expect(mail).toBeDefined();
    const link = /https?:\/\/\S+\/v1\/consents\/confirm\/[A-Za-z0-9_.-]+/.exec(mail!.body)?.[0];
    expect(link).toBeDefined();
    const token = link!.split('/').at(-1)!;
    expect((await oneClick(`https://shop.example/v1/unsubscribe/${token}`)).json<{ error: { code: string } }>().error.code).toBe('CONSENT_LINK_INVALID');
    const confirmed = await t.app.inject({ method: 'POST', url: `/v1/consents/confirm/${token}`, headers: { 'content-type': 'application/x-www-form-urlencoded' }, payload: '' });
    expect(confirmed.statusCode, confirmed.body).toBe(200);
    expect(await stateOf(id, 'marketing')).toMatchObject({ status: 'granted', in_force: true });
    const twice = await t.app.inject({ method: 'POST', url: `/v1/consents/confirm/${token}` });
    expect(twice.json<{ error: { code: string } }>().error.code).toBe('CONSENT_LINK_INVALID');
  });
});
