import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { sql } from 'kysely';
import { generate } from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { filesUnder, leaksIn, leaksInFiles } from '../resilience/leak-scan.ts';
import { testApp, type TestApp } from '../support/app.ts';
import { TEST_DIALECT } from '../support/store.ts';
import { call } from '../vault/helpers.ts';

/**
 * Known card numbers, CVVs and a cardholder name go through every card endpoint (tokenise, read,
 * relay, delete, the card fields' POST /v1/cards/collect) and through the refusals (bad Luhn, a PAN in free text, a bad CVV); then the
 * database (every table's rows as text; SQLite: also the files, WAL included), the logs at
 * debug level and every error answer are scanned. No PAN, CVV or name may appear in clear or
 * encoded (PCI DSS 3.3.1, 3.5.1). A last case leaks a CVV on purpose and sees the scan find it.
 */
const VISA = '4000056655665556';
const PANS = ['378282246310005', '371449635398431', '378734493671000'];
const BAD_LUHN = '4000056655665557';
/**
 * American Express cards, so their CVVs (CIDs) have four digits: a three-digit CVV turned up by
 * chance in the random bytes of the SQLite files (ciphertexts, MACs, tree hashes) every few runs.
 */
const CVVS = ['8462', '5281', '9173'];
const NAME = 'Philomena Quartermaine-Ostrowski';
const FUTURE = new Date().getUTCFullYear() + 4;

/**
 * A CVV counts as found only as a run of digits of its own, outside timestamps and outside the
 * long tokens (ids, hashes, MACs, ciphertexts in hex or base64) where digits turn up by chance
 * (`…T16:24:21.846Z`, `…1c846f57…` were such false finds); numbers the database counts and
 * binary values are left out before (`rowsText`). Four digits standing alone in such text are
 * not ephemeral ports (five digits) nor parts of timestamps.
 */
const NOISE = /\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z|[A-Za-z0-9+/_=-]{16,}/g;
const cvvIn = (text: string) => {
  const plain = text.replace(NOISE, ' ');
  return CVVS.filter((cvv) => new RegExp(`(?<![0-9])${cvv}(?![0-9])`).test(plain));
};

/**
 * The text runs of a file (16 printable bytes or more): where a CVV that reached the disk as text
 * — a JSON body, a log line, a row of text columns, in a live page, a free page or the WAL — stands.
 * Random bytes make such a run with a chance of about (95/256)^16 at each place, so a CVV is not
 * found in a ciphertext by chance; a CVV stored as a lone value among binary ones is the rows
 * scan's to find.
 */
const textRuns = (bytes: Buffer) => (bytes.toString('latin1').match(/[\x20-\x7e]{16,}/g) ?? []).join('\n');

/** Every table's rows as JSON text: binary values as hex, numbers the database counts left out. */
async function rowsText(db: TestApp['runtime']['store']['db']): Promise<Map<string, string>> {
  const tables =
    TEST_DIALECT === 'sqlite'
      ? await sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table'`.execute(db)
      : await sql<{ name: string }>`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()`.execute(db);
  const out = new Map<string, string>();
  // Row ids and sequence numbers (PostgreSQL returns bigint as text): an audit row numbered 9173 is no leak of CVV 9173.
  const counted = (k: string, v: unknown) =>
    typeof v === 'number' || /^(id|seq|entry_id|leaf_index|tree_size|version)$/.test(k) ? null : Buffer.isBuffer(v) || v instanceof Uint8Array ? Buffer.from(v).toString('hex') : v;
  for (const { name } of tables.rows) {
    const rows = await sql<Record<string, unknown>>`SELECT * FROM ${sql.table(name)}`.execute(db);
    out.set(name, JSON.stringify(rows.rows, counted));
  }
  return out;
}

/** The CVVs found in the database: in its rows, and (SQLite) in the text runs of its files. */
async function cvvsInDatabase(t: TestApp): Promise<string[]> {
  const found = new Set<string>();
  for (const text of (await rowsText(t.runtime.store.db)).values()) for (const c of cvvIn(text)) found.add(c);
  if (TEST_DIALECT === 'sqlite') for (const f of filesUnder(t.db.dir)) for (const c of cvvIn(textRuns(readFileSync(f)))) found.add(c);
  return [...found];
}

describe(`card data at rest, in logs and in errors (${TEST_DIALECT})`, () => {
  let t: TestApp;
  let processor: Server;
  const logs: string[] = [];
  const errors: string[] = [];

  beforeAll(async () => {
    const pems = await generate([{ name: 'commonName', value: 'localhost' }], { keyType: 'ec', curve: 'P-256', algorithm: 'sha256', extensions: [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'localhost' }] }] });
    const dir = mkdtempSync(join(tmpdir(), 'custos-scan-'));
    writeFileSync(join(dir, 'ca.pem'), pems.cert);
    processor = createServer({ cert: pems.cert, key: pems.private }, (req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(200, { 'content-type': 'application/json' }).end('{"status":"authorised"}'));
    });
    await new Promise<void>((resolve) => processor.listen(0, '127.0.0.1', resolve));
    const origin = `https://localhost:${(processor.address() as AddressInfo).port}`;
    const logStream = new Writable({
      write(chunk: Buffer, _enc, done) {
        logs.push(chunk.toString('utf8'));
        done();
      },
    });
    t = await testApp({ logStream, env: { CUSTOS_LOG_LEVEL: 'debug', CUSTOS_RELAY_ALLOWLIST: origin, CUSTOS_RELAY_CA: join(dir, 'ca.pem'), CUSTOS_CARDS_DETERMINISTIC: 'true', CUSTOS_STOREFRONT_ORIGINS: 'https://shop.example' } });
    const payments = await t.bearer(['payments']);
    const account = await t.bearer(['account']);
    const ok = async (res: { statusCode: number; body: string }, status: number) => {
      expect(res.statusCode, res.body).toBe(status);
      if (status >= 400) errors.push(res.body);
    };
    // A Visa card without a CVV, read and relayed.
    const visa = await call(t, { method: 'POST', url: '/v1/cards', auth: payments, purpose: 'payments', payload: { pan: VISA, exp_month: 5, exp_year: FUTURE, cardholder_name: NAME } });
    await ok(visa, 201);
    const visaToken = visa.json<{ token: string }>().token;
    await ok(await call(t, { method: 'POST', url: '/v1/relay', auth: payments, purpose: 'payments', payload: { url: `${origin}/pay`, method: 'POST', body: { n: `{{ ${visaToken}.pan }}` } } }), 200);
    for (const [i, pan] of PANS.entries()) {
      const created = await call(t, { method: 'POST', url: '/v1/cards', auth: payments, purpose: 'payments', payload: { pan, exp_month: 5, exp_year: FUTURE, cardholder_name: NAME, cvv: CVVS[i] } });
      await ok(created, 201);
      const token = created.json<{ token: string }>().token;
      await ok(await call(t, { url: `/v1/cards/${token}`, auth: payments, purpose: 'payments' }), 200);
      await ok(
        await call(t, {
          method: 'POST',
          url: '/v1/relay',
          auth: payments,
          purpose: 'payments',
          payload: { url: `${origin}/pay`, method: 'POST', body: { n: `{{ ${token}.pan }}`, c: `{{ ${token}.cvv }}`, h: `{{ ${token}.cardholder_name }}` } },
        }),
        200,
      );
      if (i === 0) await ok(await call(t, { method: 'DELETE', url: `/v1/cards/${token}`, auth: payments, purpose: 'payments' }), 204);
    }
    // The card fields: a stored card, a refused one, a replay, a foreign origin.
    const session = await call(t, { method: 'POST', url: '/v1/cards/sessions', auth: payments, purpose: 'payments', payload: {} });
    await ok(session, 201);
    const pk = `Bearer ${session.json<{ publishable_key: string }>().publishable_key}`;
    const entered = (pan: string) => ({ pan, exp_month: 5, exp_year: FUTURE, cardholder_name: NAME, cvv: CVVS[2] });
    await ok(await call(t, { method: 'POST', url: '/v1/cards/collect', auth: pk, payload: entered(BAD_LUHN) }), 400);
    await ok(await call(t, { method: 'POST', url: '/v1/cards/collect', auth: pk, payload: entered(PANS[2]!), headers: { origin: 'https://evil.example' } }), 403);
    await ok(await call(t, { method: 'POST', url: '/v1/cards/collect', auth: pk, payload: entered(PANS[2]!) }), 201);
    await ok(await call(t, { method: 'POST', url: '/v1/cards/collect', auth: pk, payload: entered(PANS[1]!) }), 409);
    // Refusals carrying card data.
    await ok(await call(t, { method: 'POST', url: '/v1/cards', auth: payments, purpose: 'payments', payload: { pan: BAD_LUHN, exp_month: 5, exp_year: FUTURE, cvv: CVVS[0] } }), 400);
    await ok(await call(t, { method: 'POST', url: '/v1/cards', auth: payments, purpose: 'payments', payload: { pan: PANS[1], exp_month: 5, exp_year: FUTURE, cvv: '12345' } }), 400);
    await ok(await call(t, { method: 'POST', url: '/v1/cards', auth: payments, purpose: 'payments', payload: { pan: PANS[1], exp_month: 5, exp_year: FUTURE, cardholder_name: `${NAME} ${PANS[2]}` } }), 400);
    await ok(await call(t, { method: 'POST', url: '/v1/cards', auth: account, purpose: 'account', payload: { pan: PANS[2], exp_month: 5, exp_year: FUTURE, cvv: CVVS[2] } }), 403);
    await ok(await call(t, { method: 'POST', url: '/v1/customers', auth: account, payload: { name: `Card ${PANS[0]}`, email: 'scan@example.org' } }), 400);
    await ok(await call(t, { method: 'POST', url: '/v1/relay', auth: payments, purpose: 'payments', payload: { url: 'https://example.org/', method: 'POST', body: { pan: PANS[0], cvv: CVVS[0] } } }), 403);
    await t.runtime.audit.chainPending();
  });
  afterAll(async () => {
    processor?.close();
    await t?.close();
  });

  it('the database holds no PAN, CVV or cardholder name, in clear or encoded', async () => {
    const needles = [VISA, ...PANS, BAD_LUHN, NAME];
    if (TEST_DIALECT === 'sqlite') {
      const files = filesUnder(t.db.dir);
      expect(files.some((f) => f.endsWith('.db'))).toBe(true);
      expect(leaksInFiles(files, needles)).toEqual([]);
    } else {
      for (const { name } of (await sql<{ name: string }>`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema()`.execute(t.runtime.store.db)).rows) {
        const rows = await sql<Record<string, unknown>>`SELECT * FROM ${sql.table(name)}`.execute(t.runtime.store.db);
        expect(leaksIn(name, Buffer.from(JSON.stringify(rows.rows)), needles)).toEqual([]);
      }
    }
    expect(await cvvsInDatabase(t)).toEqual([]);
  });

  it('the logs (debug level) and every error answer hold none of them', () => {
    expect(logs.length).toBeGreaterThan(0);
    const text = logs.join('\n') + errors.join('\n');
    expect(leaksIn('logs+errors', Buffer.from(text), [VISA, ...PANS, BAD_LUHN, NAME])).toEqual([]);
    expect(cvvIn(text)).toEqual([]);
  });

  it('would fail on a real leak: a CVV kept as a lone column value, one written as JSON and deleted, one in a log line', async () => {
    const db = t.runtime.store.db;
    await sql`CREATE TABLE leak_probe (n INTEGER, v TEXT)`.execute(db);
    try {
      await sql`INSERT INTO leak_probe (n, v) VALUES (1, ${CVVS[0]})`.execute(db);
      await sql`INSERT INTO leak_probe (n, v) VALUES (2, ${JSON.stringify({ token: 'tok_probe', cvv: CVVS[1] })})`.execute(db);
      expect((await cvvsInDatabase(t)).sort()).toEqual([CVVS[0], CVVS[1]].sort());
      // Deleted, the JSON row stays in the WAL (SQLite): the file scan still finds it.
      await sql`DELETE FROM leak_probe`.execute(db);
      expect(await cvvsInDatabase(t)).toEqual(TEST_DIALECT === 'sqlite' ? [CVVS[1]] : []);
    } finally {
      await sql`DROP TABLE leak_probe`.execute(db);
    }
    expect(cvvIn(`${logs.join('\n')}\n{"level":20,"msg":"relay body","body":{"c":"${CVVS[2]}"}}`)).toEqual([CVVS[2]]);
  });
});
