import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ropaCommand } from '../../cli/commands/ropa.ts';
import type { Io } from '../../cli/io.ts';
import { testApp, type TestApp } from '../../../test/support/app.ts';
import { TEST_DIALECT } from '../../../test/support/store.ts';
import type { PrivacyNotice } from './notice.ts';

/**
 * The privacy notice, the record of processing and the data map follow the inventory, the processor
 * registry and the controller settings: change one and the documents change with it.
 */
let t: TestApp;
beforeAll(async () => {
  t = await testApp({ env: { CUSTOS_SHOP_NAME: 'Acme Outdoor', CUSTOS_CONTROLLER_ADDRESS: 'Hafenstraße 1, 20457 Hamburg', CUSTOS_PRIVACY_CONTACT: 'privacy@acme.example' } });
});
afterAll(() => t.close());

const notice = async (app: TestApp, headers: Record<string, string> = {}, query = '') => (await app.app.inject({ url: `/v1/privacy-notice${query}`, headers })).json<PrivacyNotice>();

describe(`privacy notice (${TEST_DIALECT})`, () => {
  it('JSON in English: controller, purposes with legal bases, retention in words, version', async () => {
    const n = await notice(t);
    expect(n.version).toBe(t.runtime.consent.notices.current());
    expect(n.controller).toEqual({ name: 'Acme Outdoor', address: 'Hafenstraße 1, 20457 Hamburg', privacy_contact: 'privacy@acme.example', dpo_contact: null });
    const tps = n.purposes.find((p) => p.purpose === 'third_party_sharing')!;
    expect(tps).toMatchObject({ consent_based: true, sale_or_sharing: true, legal_bases: ['consent'], fields: ['email', 'name', 'locale'] });
    expect(n.purposes.find((p) => p.purpose === 'legal_obligation')!.retention).toContain('8 years from the end of the calendar year of the record');
    expect(n.purposes.find((p) => p.purpose === 'account')!.retention).toContain('as long as your account exists');
  });

  it('German by Accept-Language, English by ?lang=en; HTML by Accept with its stylesheet allowed by the CSP', async () => {
    const de = await notice(t, { 'accept-language': 'fr-CH, de;q=0.9, en;q=0.5' });
    expect(de.language).toBe('de');
    expect(de.purposes.find((p) => p.purpose === 'marketing')!.description).toBe('Newsletter und Angebote; nur mit Einwilligung des Kunden.');
    expect(de.purposes.find((p) => p.purpose === 'legal_obligation')!.retention).toContain('8 Jahre ab Ende des Kalenderjahres des Datensatzes');
    expect((await notice(t, { 'accept-language': 'de' }, '?lang=en')).language).toBe('en');
    const html = await t.app.inject({ url: '/v1/privacy-notice', headers: { accept: 'text/html', 'accept-language': 'de' } });
    expect(html.headers['content-type']).toMatch(/^text\/html/);
    expect(html.headers['content-security-policy']).toContain("style-src 'self'");
    expect(html.body).toContain('<h1>Datenschutzerklärung</h1>');
    expect(html.body).toContain('href="/v1/privacy-notice.css"');
    expect((await t.app.inject({ url: '/v1/privacy-notice.css' })).headers['content-type']).toMatch(/^text\/css/);
  });

  it('follows the processor registry and the inventory (they cannot drift apart)', async () => {
    const before = await notice(t);
    await t.runtime.processors.add('cli', { name: 'Parcel Co', purposes: ['fulfilment'], categories: ['identity', 'location'], country: 'US', safeguard: 'scc' });
    const after = await notice(t);
    expect(after.version).toBe(before.version + 1);
    expect(after.recipients).toEqual([expect.objectContaining({ name: 'Parcel Co', role: 'processor', country: 'US', safeguard: 'scc', outside_eea: true })]);
    expect(after.purposes.find((p) => p.purpose === 'fulfilment')!.recipients).toEqual(['Parcel Co']);
    const [p] = await t.runtime.processors.list();
    await t.runtime.processors.remove('cli', p!.id);
    const ended = await notice(t);
    expect(ended.recipients).toEqual([]);
    expect(ended.past_recipients.map((r) => r.name)).toEqual(['Parcel Co']);

    const file = join(mkdtempSync(join(tmpdir(), 'custos-inv-')), 'inventory.yaml');
    writeFileSync(file, ['version: 1', 'extends: default', 'purposes:', '  analytics:', '    description:', '      en: Counting visits to improve the shop.', '      de: Besuche zählen, um den Shop zu verbessern.', ''].join('\n'));
    const other = await testApp({ env: { CUSTOS_INVENTORY: file } });
    try {
      expect((await notice(other)).purposes.find((x) => x.purpose === 'analytics')!.description).toBe('Counting visits to improve the shop.');
    } finally {
      await other.close();
    }
  });
});

describe(`record of processing and data map (${TEST_DIALECT})`, () => {
  it('an account key reads the ROPA as JSON and CSV and the data map; other keys and no key are refused', async () => {
    const account = await t.bearer(['account']);
    const json = await t.app.inject({ url: '/v1/ropa', headers: { authorization: account } });
    expect(json.statusCode, json.body).toBe(200);
    const rows = json.json<{ data: { purpose: string; controller: string; erasure_time_limits: string[]; data_subjects: string[] }[] }>().data;
    expect(rows.find((r) => r.purpose === 'legal_obligation')).toMatchObject({ controller: 'Acme Outdoor', data_subjects: ['customers'], erasure_time_limits: ['as long as your account exists', '8 years from the end of the calendar year of the record'] });
    const csv = await t.app.inject({ url: '/v1/ropa?format=csv', headers: { authorization: account } });
    expect(csv.headers['content-type']).toMatch(/^text\/csv/);
    expect(csv.body.split('\r\n')[0]).toBe('controller,controller_contact,dpo_contact,purpose,description,legal_bases,data_subjects,data_categories,recipients,third_country_transfers,erasure_time_limits,security_measures');
    const map = await t.app.inject({ url: '/v1/data-map', headers: { authorization: account } });
    expect(map.json<{ collections: { name: string; fields: { name: string; purposes: { purpose: string }[] }[] }[] }>().collections.find((c) => c.name === 'customers')!.fields.find((f) => f.name === 'email')!.purposes.map((p) => p.purpose)).toContain('third_party_sharing');
    const marketing = await t.bearer(['marketing']);
    expect((await t.app.inject({ url: '/v1/ropa', headers: { authorization: marketing } })).statusCode).toBe(403);
    expect((await t.app.inject({ url: '/v1/data-map', headers: { authorization: marketing } })).statusCode).toBe(403);
    expect((await t.app.inject({ url: '/v1/ropa' })).statusCode).toBe(401);
  });

  it('custos ropa export --format csv', async () => {
    const out: string[] = [];
    const io: Io = { out: (l) => void out.push(l), err: () => undefined, progress: () => undefined, done: () => undefined };
    expect(await ropaCommand(t.runtime, ['export', '--format', 'csv'], io)).toBe(0);
    expect(out.join('\n').split('\r\n').length).toBe(1 + t.runtime.inventory.purposes.size);
  });
});
