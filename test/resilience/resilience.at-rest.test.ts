import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { TEST_DIALECT, type TestDatabase } from '../support/store.ts';
import { apiClient, idOf, type ApiClient, type Reply } from './api-client.ts';
import { CHILD_TIMEOUT, childEnv, killChildren, newDatabase, runCli, startServer, tempDir, type RunResult, type ServerChild } from './harness.ts';
import { filesUnder, leaksIn, leaksInFiles, type Leak } from './leak-scan.ts';
import { rawDb } from './raw-db.ts';

/**
 * No plaintext at rest and none in logs. Distinctive personal data goes in through the API of a
 * child server logging at debug level (stdout and stderr captured to a file), alongside bad
 * requests that carry the same values (undeclared fields, wrong types, broken JSON, values in the
 * path, the query and a header). Then every file of the data folder (the SQLite database, its WAL
 * and shared-memory files, the keyring), every PostgreSQL row of the test schema, the server's and
 * the CLI's output, and every error response are searched for the values and their normalised
 * forms. The attack: reading a copied database file, a backup, a log shipper's index.
 */
const V = {
  email: 'Zephyrine.Quillfeather@Marmalade-Observatory.example',
  name: 'Zephyrine Quillfeather-Oberwald',
  phone: '+44 20 7946 0381',
  dob: '1957-03-29',
  line1: 'Lighthouse Lane 77 Quillfeather Court',
  line2: 'Apartment Marzipan 12',
  city: 'Vellmarsh Abbey',
  postal: 'QX9 4ZZ',
  itemName: 'Marmalade Harpsichord Deluxe',
  sku: 'SKU-ZEPHYR-8812',
  renamed: 'Ottoline Brackenbury-Wispe',
};
const NORMALISED = { emailLower: V.email.toLowerCase(), phoneE164: '+442079460381', phoneDigits: '442079460381' };
/** Distinctive words, so that a partial leak (a fragment, a masked form keeping them) is caught too. */
const TOKENS = ['Zephyrine', 'Quillfeather', 'Oberwald', 'Marzipan', 'Vellmarsh', 'Harpsichord', 'ZEPHYR-8812', 'Brackenbury'];
const NEEDLES = [...Object.values(V), ...Object.values(NORMALISED), ...TOKENS];

describe(`no plaintext at rest or in logs (${TEST_DIALECT})`, { timeout: CHILD_TIMEOUT }, () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  let server: ServerChild;
  let api: ApiClient;
  let cli: RunResult[] = [];
  const errorReplies: { what: string; reply: Reply }[] = [];

  beforeAll(async () => {
    db = await newDatabase();
    // No CUSTOS_ROOT_KEY: the keyring file in the data folder is created, and scanned too.
    env = childEnv(db, { CUSTOS_LOG_LEVEL: 'debug' });
    const created = await runCli(['apikey', 'create', '--name', 'at-rest', '--purposes', 'account,support,fulfilment'], env);
    cli.push(created);
    expect(created.code, created.stderr).toBe(0);
    server = await startServer(env, { logFile: join(tempDir(), 'server.log') });
    api = apiClient(server.url, created.stdout.trim());
  }, CHILD_TIMEOUT);
  afterAll(async () => {
    await killChildren();
    await db.cleanup();
  });

  it('scanner finds a value hidden as text, UTF-16, base64, base64url and hex (control)', () => {
    const hidden = [
      Buffer.from(`xx${V.email.toUpperCase()}yy`),
      Buffer.from(`..${V.line1}`, 'utf16le'),
      // UTF-16 starting at an odd byte offset, in a buffer of odd length.
      Buffer.concat([Buffer.from('x'), Buffer.from(V.city, 'utf16le')]),
      Buffer.concat([Buffer.from('x'), Buffer.from(V.city, 'utf16le'), Buffer.from('y')]),
      Buffer.from(`x${Buffer.from(`"${V.name}"`).toString('base64')}`),
      Buffer.from(`y${Buffer.from(`ab${V.line1}`).toString('base64url')}`),
      Buffer.from(Buffer.from(`c${V.itemName}`).toString('hex').toUpperCase()),
    ];
    for (const bytes of hidden) expect(leaksIn('control', bytes, NEEDLES)).not.toEqual([]);
    expect(leaksIn('control', Buffer.from('nothing personal here: f1.1.AAAA'), NEEDLES)).toEqual([]);
  });

  it('stores, reads and refuses the values through the API', async () => {
    const created = await api.post('/v1/customers', { email: V.email, name: V.name, phone: V.phone, date_of_birth: V.dob, locale: 'en-GB' });
    expect(created.status, created.text).toBe(201);
    const id = idOf(created);
    const address = { line1: V.line1, line2: V.line2, city: V.city, postal_code: V.postal, country: 'GB' };
    expect((await api.post(`/v1/customers/${id}/addresses`, address)).status).toBe(201);
    const postal = { name: V.name, line1: V.line1, city: V.city, postal_code: V.postal, country: 'GB' };
    const order = await api.post(`/v1/customers/${id}/orders`, {
      number: 'ORD-AT-REST-1',
      placed_at: '2025-06-07T08:09:10.000Z',
      currency: 'GBP',
      total: '1299.00',
      status: 'paid',
      items: [{ sku: V.sku, name: V.itemName, quantity: 1, unit_price: '1299.00' }],
      shipping_address: postal,
      billing_address: postal,
    });
    expect(order.status, order.text).toBe(201);
    // A correction: the old name stays only as ciphertext (if at all), the new one too.
    expect((await api.patch(`/v1/customers/${id}`, { name: V.renamed, phone: '+442079460381' })).status).toBe(200);
    expect((await api.patch(`/v1/customers/${id}`, { name: V.name })).status).toBe(200);

    // The values are really stored: they come back to a caller with the right purpose.
    const read = await api.get(`/v1/customers/${id}`, 'account');
    expect(read.status).toBe(200);
    expect(read.body).toMatchObject({ email: NORMALISED.emailLower, name: V.name, phone: NORMALISED.phoneE164, date_of_birth: V.dob });
    const found = await api.get(`/v1/customers?email=${encodeURIComponent(V.email)}`, 'account');
    expect((found.body as { data: { id: string }[] }).data.map((d) => d.id)).toEqual([id]);
    const byPhone = await api.get(`/v1/customers?phone=${encodeURIComponent(V.phone)}`, 'support');
    expect((byPhone.body as { data: { id: string }[] }).data.map((d) => d.id)).toEqual([id]);
    const ord = await api.get(`/v1/orders/${idOf(order)}`, 'account');
    expect(ord.text).toContain(V.itemName);

    const bad = async (what: string, reply: Promise<Reply>, lowest = 400) => {
      const r = await reply;
      errorReplies.push({ what, reply: r });
      expect(r.status, `${what}: ${r.text}`).toBeGreaterThanOrEqual(lowest);
      expect(r.status, `${what}: ${r.text}`).toBeLessThan(500);
    };
    const json = { 'content-type': 'application/json' };
    await bad('undeclared field', api.post('/v1/customers', { email: V.email, name: V.name, favourite_poem: V.line1 }));
    await bad('undeclared nested field', api.post(`/v1/customers/${id}/orders`, {
      number: 'ORD-AT-REST-2', placed_at: '2025-06-07T08:09:10.000Z', currency: 'GBP', total: '1.00',
      items: [{ sku: V.sku, name: V.itemName, quantity: 1, unit_price: '1.00', engraving: V.name }],
    }));
    await bad('bad types', api.post('/v1/customers', { email: V.name, name: 12345, phone: `call ${V.name}`, date_of_birth: V.line2 }));
    await bad('email where a phone goes', api.patch(`/v1/customers/${id}`, { phone: V.email, locale: V.city }));
    await bad('too long', api.post('/v1/customers', { email: V.email, name: `${V.name} `.repeat(20) }));
    await bad('broken JSON', api.send('POST', '/v1/customers', { body: `{"email": "${V.email}", "name": "${V.name}", `, headers: json }));
    // Not an email address: refused, or simply found nothing (no blind index can match it).
    await bad('lookup by a malformed email', api.get(`/v1/customers?email=${encodeURIComponent(V.name)}`, 'account'), 200);
    await bad('lookup by email and phone at once', api.get(`/v1/customers?email=${encodeURIComponent(V.email)}&phone=${encodeURIComponent(V.phone)}`, 'account'));
    await bad('lookup for an unknown purpose', api.get(`/v1/customers?email=${encodeURIComponent(V.email)}`, V.city));
    await bad('lookup for a purpose the key lacks', api.get(`/v1/customers?email=${encodeURIComponent(V.email)}`, 'marketing'));
    await bad('email in the path', api.get(`/v1/customers/${encodeURIComponent(V.email)}`, 'account'));
    await bad('unknown route', api.get(`/v1/people/${encodeURIComponent(V.name)}?email=${encodeURIComponent(V.email)}`, 'account'));
    await bad('purpose header carrying a name', api.get(`/v1/customers/${id}`, V.name));
    const anonymous = apiClient(server.url, `ck_${V.name}`);
    await bad('bad API key with values in the body', anonymous.post('/v1/customers', { email: V.email, name: V.name }));
  });

  it('error responses name fields, never echo the values', () => {
    const leaks = errorReplies.flatMap(({ what, reply }) => leaksIn(`response to ${what}`, Buffer.from(reply.text), NEEDLES));
    expect(leaks).toEqual([]);
  });

  it('no value in any file of the data folder or in the logs while the server runs', async () => {
    expect(filesUnder(db.dir)).toContain(join(db.dir, 'keyring.json'));
    if (TEST_DIALECT === 'sqlite') expect(filesUnder(db.dir)).toEqual(expect.arrayContaining([join(db.dir, 'custos.db'), join(db.dir, 'custos.db-wal')]));
    const leaks: Leak[] = [...leaksInFiles(filesUnder(db.dir), NEEDLES), ...leaksInFiles([server.logFile], NEEDLES)];
    expect(leaks).toEqual([]);
    // The debug log did record the traffic (so an empty log is not why nothing was found).
    expect(server.output()).toContain('"route":"/v1/customers"');
  });

  it('no value in the data folder, the database rows or the logs after the server stopped', async () => {
    expect((await server.stop('SIGTERM')).code).toBe(0);
    // CLI output too: a command that reads or verifies must not print values either.
    cli.push(await runCli(['audit', 'verify'], env), await runCli(['apikey', 'list'], env), await runCli(['keys', 'status'], env));
    for (const r of cli) expect(r.code, r.stderr).toBe(0);
    const leaks: Leak[] = [
      ...leaksInFiles(filesUnder(db.dir), NEEDLES),
      ...leaksInFiles([server.logFile], NEEDLES),
      ...cli.flatMap((r, i) => leaksIn(`cli #${i}`, Buffer.from(r.stdout + r.stderr), NEEDLES)),
    ];
    const raw = await rawDb(db);
    try {
      const tables = await raw.tables();
      expect(tables).toEqual(expect.arrayContaining(['records', 'blind_indexes', 'audit_log', 'subject_keys', 'keks', 'api_keys']));
      for (const table of tables) {
        const rows = await raw.query(`SELECT * FROM "${table}"`);
        leaks.push(...leaksIn(`table ${table}`, Buffer.from(JSON.stringify(rows)), NEEDLES));
      }
      // The records are there (encrypted), so the search above looked at real rows.
      const records = await raw.query<{ data: string }>("SELECT data FROM records WHERE collection = 'customers'");
      expect(records).toHaveLength(1);
      expect(records[0]?.data).toMatch(/^\{"s":"r1\.\d+\.[A-Za-z0-9_-]+","n":\["[a-z_]+"/);
    } finally {
      await raw.close();
    }
    expect(leaks).toEqual([]);
  });
});
