import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { codeOf, customer, signIn, browser, type AuthTest } from '../identity/helpers.ts';
import { person, seed } from '../vault/helpers.ts';
import { verifyEntryProof, type EntryProof } from '../../src/modules/audit/browser-verify.ts';
import { apiCall, parseCsv, rightsApp, unzip } from './helpers.ts';

/**
 * Access and portability exports through the whole app, on SQLite and PostgreSQL: generated from
 * the inventory's `export` marks, one JSON document and one CSV per collection in a ZIP, behind a
 * signed, expiring, single-use link that is mailed (with no personal data but the address) and
 * shown to the customer; forged, replayed and expired links refused with stable codes and audited.
 */
let t: AuthTest;
let rights: string;
let shop: string;
let call: ReturnType<typeof apiCall>;
beforeAll(async () => {
  ({ t, rights, shop } = await rightsApp());
  call = apiCall(t);
});
afterAll(async () => t.close());

interface ExportView {
  url: string | null;
  token: string | null;
  expires_at: string;
  downloaded_at: string | null;
}
interface View {
  id: string;
  state: string;
  channel: string;
  export?: ExportView | null;
}
interface Doc {
  format: string;
  customer_id: string;
  request: { id: string; kind: string };
  collections: { customers: Record<string, unknown>[]; addresses: Record<string, unknown>[]; orders: Record<string, unknown>[]; cards: Record<string, unknown>[] };
  withheld_fields: { collection: string; field: string }[];
  consents: { purposes: { purpose: string }[]; history: { purpose: string; status: string }[] };
  access_log: { action: string; purpose: string | null }[];
  purposes: { purpose: string; legal_bases: string[]; fields: string[] }[];
  recipients: { name: string }[];
  retention: { collection: string; field: string; retention: string }[];
  sources: { collection: string; channel: string; writes: number }[];
}

const download = (token: string) => t.app.inject({ method: 'POST', url: '/v1/exports/download', payload: { token } });

async function fileAccess(customerId: string, kind = 'access'): Promise<View> {
  const res = await call('POST', '/v1/rights/requests', rights, { kind, customer_id: customerId });
  expect(res.statusCode, res.body).toBe(201);
  return res.json<View>();
}

async function auditActions(customerId: string, prefix: string) {
  await t.runtime.audit.chainPending();
  const rows = await t.runtime.store.db.selectFrom('audit_log').select(['action', 'outcome']).where('subject_id', '=', customerId).where('action', 'like', `${prefix}%`).orderBy('id').execute();
  return rows.map((r) => `${r.action}:${r.outcome}`);
}

describe('an access request filed by the shop', () => {
  it('completes at once with a link; the ZIP holds the JSON document and one CSV per collection, from the inventory', async () => {
    const p = person();
    p.address.line2 = '=SUM(A1:A9)';
    const { id, orderId, addressId } = await seed(t, shop, p);
    const consented = await call('POST', `/v1/customers/${id}/consents`, await t.bearer(['account', 'marketing']), { purpose: 'marketing', granted: true, source: 'api', notice_version: 1 });
    expect(consented.statusCode, consented.body).toBe(201);
    await t.runtime.processors.add('cli', { name: 'Parcel Co', purposes: ['fulfilment'], categories: ['location'], country: 'DE' });
    const view = await fileAccess(id);
    expect(view.state).toBe('completed');
    expect(view.export?.url).toMatch(/^https:\/\/shop\.example\/account\/export#token=rex_/);
    expect(view.export?.url).toContain(view.export!.token!);

    // Mailed to the customer: the link and nothing personal but the address.
    const mail = (await t.outbox()).filter((m) => m.to === p.customer.email && /ready to download/.test(m.subject)).at(-1);
    expect(mail?.body).toContain(view.export!.token!);
    for (const value of [p.customer.name, p.address.line1, p.order.number, id]) expect(mail!.body).not.toContain(value);

    const res = await download(view.export!.token!);
    expect(res.statusCode, res.body.slice(0, 300)).toBe(200);
    expect(res.headers['content-type']).toBe('application/zip');
    expect(res.headers['content-disposition']).toMatch(/^attachment; filename="data-export-\d{4}-\d\d-\d\d-rrq_/);
    const files = await unzip(res.rawPayload);
    expect([...files.keys()].sort()).toEqual(
      ['README.txt', 'export.json', ...['customers', 'addresses', 'orders', 'cards', 'consents', 'access_log', 'purposes', 'recipients', 'retention', 'sources'].map((n) => `csv/${n}.csv`)].sort(),
    );
    const doc = JSON.parse(files.get('export.json')!) as Doc;
    expect(doc).toMatchObject({ format: 'custos-export/1', customer_id: id, request: { id: view.id, kind: 'access' } });
    expect(doc.collections.customers).toEqual([expect.objectContaining({ id, ...p.customer, phone: p.customer.phone.replace(/\s/g, '') })]);
    expect(doc.collections.addresses).toEqual([expect.objectContaining({ id: addressId, customer_id: id, ...p.address })]);
    expect(doc.collections.orders).toEqual([expect.objectContaining({ id: orderId, number: p.order.number, items: p.order.items, billing_address: p.order.billing_address })]);
    expect(doc.collections.cards).toEqual([]);
    expect(doc.withheld_fields).toEqual([expect.objectContaining({ collection: 'cards', field: 'pan' })]);
    expect(doc.consents.history).toEqual([expect.objectContaining({ purpose: 'marketing', status: 'granted' })]);
    expect(doc.access_log.map((e) => e.action)).toEqual(expect.arrayContaining(['vault.create', 'consent.grant', 'rights.request.completed']));
    expect(doc.purposes.find((x) => x.purpose === 'fulfilment')).toMatchObject({ legal_bases: ['contract'], fields: expect.arrayContaining(['addresses.line1', 'orders.shipping_address']) });
    expect(doc.recipients.map((r) => r.name)).toContain('Parcel Co');
    expect(doc.retention).toContainEqual(expect.objectContaining({ collection: 'orders', field: 'number', retention: 'P8Y from end_of_year (DE P8Y, FR P10Y)' }));
    expect(doc.sources).toEqual(expect.arrayContaining([expect.objectContaining({ collection: 'orders', channel: 'shop_system', writes: 1 })]));

    // CSV: one row per record, object fields one column per part, a formula neutralised.
    const addresses = parseCsv(files.get('csv/addresses.csv')!);
    expect(addresses[0]).toEqual(['id', 'customer_id', 'created_at', 'updated_at', 'line1', 'line2', 'city', 'postal_code', 'region', 'country']);
    expect(addresses[1]?.[5]).toBe("'=SUM(A1:A9)");
    const orders = parseCsv(files.get('csv/orders.csv')!);
    expect(orders[0]).toEqual(expect.arrayContaining(['number', 'items', 'billing_address.name', 'shipping_address.postal_code']));
    const row = Object.fromEntries(orders[0]!.map((h, i) => [h, orders[1]![i]]));
    expect(row).toMatchObject({ id: orderId, number: p.order.number, 'billing_address.city': p.order.billing_address.city });
    expect(JSON.parse(row.items!)).toEqual(p.order.items);
    expect(parseCsv(files.get('csv/cards.csv')!)[0]).not.toContain('pan');

    expect(await auditActions(id, 'rights.export')).toEqual(['rights.export.downloaded:success']);
    expect(await auditActions(id, 'vault.export')).toEqual(['vault.export:success', 'vault.export:success', 'vault.export:success', 'vault.export:success', 'vault.export:success', 'vault.export:success']);
  });

  it("the access log carries each entry's inclusion proof and the signed head, as GET /v1/me/access-log shows them; an altered entry does not verify", async () => {
    const { id } = await seed(t, shop);
    await call('GET', `/v1/customers/${id}`, shop, undefined, { 'custos-purpose': 'fulfilment' });
    await t.runtime.audit.chainPending(); // admits the entries so far and signs a head over them
    const view = await fileAccess(id);
    const files = await unzip((await download(view.export!.token!)).rawPayload);
    type Proven = EntryProof['entry'] & { proof: EntryProof['proof'] | null };
    const doc = JSON.parse(files.get('export.json')!) as { access_log: Proven[]; access_log_heads: EntryProof['head'][] };
    const keys = (await t.app.inject({ method: 'GET', url: '/v1/keys/audit' })).json<EntryProof['keys']>();
    const proven = doc.access_log.filter((e) => e.proof !== null);
    expect(proven.map((e) => e.action)).toEqual(expect.arrayContaining(['vault.create', 'vault.read']));
    expect(doc.access_log_heads.length).toBeGreaterThanOrEqual(1);
    const check = (e: Proven) => {
      const { proof, ...entry } = e;
      const head = doc.access_log_heads.find((h) => h.tree_size === proof!.tree_size)!;
      return verifyEntryProof({ entry: entry as EntryProof['entry'], proof: proof!, head, keys });
    };
    for (const e of proven) expect(await check(e)).toBe(true);
    expect(await check({ ...proven[0]!, purpose: 'marketing' })).toBe(false);
  });

  it('a link works once: the second download is refused and audited', async () => {
    const { id } = await seed(t, shop);
    const view = await fileAccess(id, 'portability');
    expect((await download(view.export!.token!)).statusCode).toBe(200);
    const again = await download(view.export!.token!);
    expect(again.statusCode).toBe(410);
    expect(codeOf(again)).toBe('RIGHTS_EXPORT_LINK_USED');
    expect(await auditActions(id, 'rights.export')).toEqual(['rights.export.downloaded:success', 'rights.export.link_used:denied']);
    // Views no longer show a spent link.
    const shown = (await call('GET', `/v1/rights/requests/${view.id}`, rights)).json<View>();
    expect(shown.export).toMatchObject({ url: null, token: null, downloaded_at: expect.any(String) });
  });

  it('an expired link is refused with its own code', async () => {
    const { id } = await seed(t, shop);
    const view = await fileAccess(id);
    t.clock.advance(168 * 3_600_000 + 1000);
    const res = await download(view.export!.token!);
    expect(res.statusCode).toBe(410);
    expect(codeOf(res)).toBe('RIGHTS_EXPORT_LINK_EXPIRED');
    expect(await auditActions(id, 'rights.export')).toEqual(['rights.export.link_expired:denied']);
  });

  it('forged, altered and truncated links are refused before anything is sent, and leave the real link usable', async () => {
    const { id } = await seed(t, shop);
    const view = await fileAccess(id);
    const token = view.export!.token!;
    const [rid, exp, sig] = token.split('.') as [string, string, string];
    const forged = [
      `${rid}.${exp}.${sig.slice(0, -1)}${sig.endsWith('A') ? 'B' : 'A'}`,
      `${rid}.${Number(exp) + 86_400}.${sig}`, // a later end, same signature
      `${rid.slice(0, -1)}${rid.endsWith('0') ? '1' : '0'}.${exp}.${sig}`, // another link id
      `${rid}.${exp}`,
      'not a token',
    ];
    for (const f of forged) {
      const res = await download(f);
      expect(res.statusCode, f).toBe(403);
      expect(codeOf(res)).toBe('RIGHTS_EXPORT_LINK_INVALID');
    }
    expect((await download(token)).statusCode).toBe(200);
  });
});

describe("the customer's own request", () => {
  it('completes at once; the link shows in GET /v1/me and the own view, not in the shop view', async () => {
    const email = await customer(t);
    const { jar } = await signIn(t, email);
    const filed = await browser(t, jar, 'POST', '/v1/me/rights-requests', { kind: 'portability' });
    expect(filed.statusCode, filed.body).toBe(201);
    const view = filed.json<View>();
    expect(view).toMatchObject({ state: 'completed', channel: 'customer' });
    expect(view.export?.token).toMatch(/^rex_/);
    const me = (await browser(t, jar, 'GET', '/v1/me')).json<{ id: string; data_exports: { request_id: string; token: string }[] }>();
    expect(me.data_exports).toEqual([expect.objectContaining({ request_id: view.id, token: view.export!.token })]);
    // The shop answers for requests it files; a link the customer asked for is the customer's alone.
    const shopView = (await call('GET', `/v1/rights/requests/${view.id}`, rights)).json<View>();
    expect(shopView.export).toMatchObject({ url: null, token: null, downloaded_at: null });
    const files = await unzip((await download(view.export!.token!)).rawPayload);
    expect((JSON.parse(files.get('export.json')!) as Doc).collections.customers[0]).toMatchObject({ id: me.id, email });
    const after = (await browser(t, jar, 'GET', '/v1/me')).json<{ data_exports: unknown[] }>();
    expect(after.data_exports).toEqual([]);
  });
});

describe('a request answered through the staff queue', () => {
  it('an integration request is completed by a transition, which produces the export; nothing is mailed', async () => {
    const { id, p } = await seed(t, shop);
    const filed = await t.runtime.rights.create({ actor: { ref: 'integration:test', kind: 'system', purposes: [] }, requestId: 'r' }, { kind: 'access', customerId: id, channel: 'integration', verification: 'signed_webhook' });
    expect(filed.state).toBe('in_progress');
    const before = (await t.outbox()).length;
    const done = await call('POST', `/v1/rights/requests/${filed.id}/transitions`, rights, { to: 'completed' });
    expect(done.statusCode, done.body).toBe(200);
    expect(done.json<View>().export?.token).toMatch(/^rex_/);
    expect((await t.outbox()).slice(before).filter((m) => m.to === p.customer.email)).toEqual([]);
  });
});

describe('the export follows the inventory', () => {
  it('a field the shop marks export: false is left out of the JSON and the CSV, and listed as withheld', async () => {
    const file = join(mkdtempSync(join(tmpdir(), 'custos-export-')), 'shop.yaml');
    writeFileSync(
      file,
      [
        'version: 1',
        'extends: default',
        'collections:',
        '  customers:',
        '    fields:',
        '      date_of_birth: { type: date, category: demographic, protection: randomised, retention: account_lifetime, mask: year, export: false, purposes: { account: { basis: contract } } }',
        '',
      ].join('\n'),
    );
    const other = await rightsApp({ CUSTOS_INVENTORY: file });
    try {
      const { id, p } = await seed(other.t, other.shop);
      const view = (await apiCall(other.t)('POST', '/v1/rights/requests', other.rights, { kind: 'access', customer_id: id })).json<View>();
      const res = await other.t.app.inject({ method: 'POST', url: '/v1/exports/download', payload: { token: view.export!.token } });
      const files = await unzip(res.rawPayload);
      const doc = JSON.parse(files.get('export.json')!) as Doc;
      expect(doc.collections.customers[0]).toMatchObject({ email: p.customer.email });
      expect(doc.collections.customers[0]).not.toHaveProperty('date_of_birth');
      expect(files.get('export.json')).not.toContain(p.customer.date_of_birth);
      expect(parseCsv(files.get('csv/customers.csv')!)[0]).not.toContain('date_of_birth');
      expect(doc.withheld_fields).toContainEqual(expect.objectContaining({ collection: 'customers', field: 'date_of_birth' }));
    } finally {
      await other.t.close();
    }
  });
});
