/**
 * The TLS probe against real TLS servers started here: Custos's own listener (TLS 1.2/1.3, AEAD
 * suites, HSTS), and a weak server that accepts TLS 1.0 and 1.1 and CBC suites, serves an RSA
 * 1024 certificate and sends no HSTS — each weakness must be named. Also: an untrusted
 * certificate (trusted once its CA is given), one for another host name, an expired one, a short
 * HSTS, and an address where nothing listens.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import type { FastifyInstance } from 'fastify';
import { generate, type CertificateExtension } from 'selfsigned';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../app.ts';
import { loadConfig } from '../../config/config.ts';
import { loadTls } from '../../http/tls.ts';
import { openRuntime, type Runtime } from '../../runtime.ts';
import { freePort } from '../../../test/resilience/harness.ts';
import { testDatabase, TEST_DIALECT, type TestDatabase } from '../../../test/support/store.ts';
import type { Finding } from './finding.ts';
import { probeTls } from './tls-probe.ts';

const DAY = 86_400_000;
const now = () => new Date();
const servers: Server[] = [];
const byId = (findings: Finding[]) => Object.fromEntries(findings.map((f) => [f.id, f]));

async function serve(options: { cert: string; key: string; minVersion?: 'TLSv1' | 'TLSv1.2'; ciphers?: string; hsts?: string | null }): Promise<URL> {
  const server = createServer(
    { cert: options.cert, key: options.key, minVersion: options.minVersion ?? 'TLSv1.2', ...(options.ciphers === undefined ? {} : { ciphers: options.ciphers }) },
    (_req, res) => {
      if (options.hsts !== null && options.hsts !== undefined) res.setHeader('strict-transport-security', options.hsts);
      res.end('ok');
    },
  );
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  servers.push(server);
  return new URL(`https://127.0.0.1:${(server.address() as AddressInfo).port}/health`);
}

const ip: CertificateExtension[] = [{ name: 'subjectAltName', altNames: [{ type: 7, ip: '127.0.0.1' }] }];
let ca: { cert: string; private: string };
const issued = (days: number, altNames = ip, from = Date.now() - DAY) =>
  generate([{ name: 'commonName', value: 'shop.example' }], { keyType: 'ec', ca: { key: ca.private, cert: ca.cert }, notBeforeDate: new Date(from), notAfterDate: new Date(Date.now() + days * DAY), extensions: altNames });

beforeAll(async () => {
  ca = await generate([{ name: 'commonName', value: 'Posture Test CA' }], { keyType: 'ec', notAfterDate: new Date(Date.now() + 900 * DAY), extensions: [{ name: 'basicConstraints', cA: true, critical: true }, { name: 'keyUsage', keyCertSign: true, critical: true }] });
});
afterAll(async () => {
  await Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve))));
});

describe(`TLS probe: Custos's own listener (${TEST_DIALECT})`, () => {
  let db: TestDatabase;
  let runtime: Runtime;
  let app: FastifyInstance;
  let url: URL;
  beforeAll(async () => {
    db = testDatabase();
    const config = loadConfig({ ...db.env, CUSTOS_ROOT_KEY: randomBytes(32).toString('base64'), CUSTOS_LOG_LEVEL: 'silent' });
    runtime = await openRuntime(config, { background: false });
    app = await buildApp(runtime, { tls: await loadTls(config) });
    const port = await freePort();
    await app.listen({ host: '127.0.0.1', port });
    url = new URL(`https://127.0.0.1:${port}/health`);
  });
  afterAll(async () => {
    await app?.close();
    await runtime?.close();
    await db?.cleanup();
  });

  it('accepts TLS 1.2 and 1.3 only, AEAD suites only, sends HSTS; its self-signed certificate is the one finding (a CI warning)', async () => {
    const found = byId(await probeTls(url, { now: now() }));
    expect(found['tls.protocols']).toMatchObject({ status: 'pass', summary: expect.stringMatching(/accepts TLS 1\.2 and TLS 1\.3 only/) });
    expect(found['tls.ciphers']?.status).toBe('pass');
    expect(found['tls.hsts']).toMatchObject({ status: 'pass', summary: expect.stringMatching(/max-age 31536000 s with includeSubDomains/) });
    expect(found['tls.certificate']).toMatchObject({ status: 'fail', ciWarn: true, summary: expect.stringMatching(/not trusted: DEPTH_ZERO_SELF_SIGNED_CERT \(EC P-256/) });
  });
});

describe('TLS probe: other servers', () => {
  it('a weak server: TLS 1.0 and 1.1, a CBC suite, an RSA 1024 key and no HSTS all fail', async () => {
    const weak = await generate([{ name: 'commonName', value: 'weak.example' }], { keyType: 'rsa', keySize: 1024, algorithm: 'sha256', extensions: ip });
    const url = await serve({ cert: weak.cert, key: weak.private, minVersion: 'TLSv1', ciphers: 'ALL:@SECLEVEL=0', hsts: null });
    const found = byId(await probeTls(url, { now: now(), ca: weak.cert }));
    expect(found['tls.protocols']).toMatchObject({ status: 'fail', summary: expect.stringMatching(/accepts TLS 1\.0 and TLS 1\.1/) });
    expect(found['tls.ciphers']).toMatchObject({ status: 'fail', summary: expect.stringMatching(/non-AEAD suite TLS_\w+_CBC_\w+ over TLS 1\.2/) });
    expect(found['tls.certificate']).toMatchObject({ status: 'fail', summary: expect.stringMatching(/weak key: RSA 1024 bits/) });
    expect(found['tls.certificate']?.ciWarn).toBeUndefined();
    expect(found['tls.hsts']).toMatchObject({ status: 'fail', summary: expect.stringMatching(/sends no Strict-Transport-Security/) });
  });

  it('a certificate from a CA given with --ca passes; without it, it is not trusted', async () => {
    const leaf = await issued(200);
    const url = await serve({ cert: leaf.cert, key: leaf.private, hsts: 'max-age=63072000; includeSubDomains; preload' });
    const trusted = byId(await probeTls(url, { now: now(), ca: ca.cert }));
    expect(trusted['tls.certificate']).toMatchObject({ status: 'pass', summary: expect.stringMatching(/is trusted, names the host, EC P-256/) });
    expect(trusted['tls.hsts']?.status).toBe('pass');
    const unknown = byId(await probeTls(url, { now: now() }));
    expect(unknown['tls.certificate']).toMatchObject({ status: 'fail', ciWarn: true });
  });

  it('a trusted certificate for another host name, one expiring in 10 days, an expired one', async () => {
    const other = await issued(200, [{ name: 'subjectAltName', altNames: [{ type: 2, value: 'other.example' }] }]);
    const wrongName = byId(await probeTls(await serve({ cert: other.cert, key: other.private, hsts: 'max-age=31536000; includeSubDomains' }), { now: now(), ca: ca.cert }));
    expect(wrongName['tls.certificate']).toMatchObject({ status: 'fail', summary: expect.stringMatching(/not trusted: it does not name 127\.0\.0\.1/) });
    const soon = await issued(10);
    const expiring = byId(await probeTls(await serve({ cert: soon.cert, key: soon.private, hsts: 'max-age=31536000; includeSubDomains' }), { now: now(), ca: ca.cert }));
    expect(expiring['tls.certificate']).toMatchObject({ status: 'warn', summary: expect.stringMatching(/expires on .*, in (9|10) days/) });
    const old = await issued(-1, ip, Date.now() - 30 * DAY);
    const expired = byId(await probeTls(await serve({ cert: old.cert, key: old.private, hsts: 'max-age=31536000; includeSubDomains' }), { now: now(), ca: ca.cert }));
    expect(expired['tls.certificate']).toMatchObject({ status: 'fail', summary: expect.stringMatching(/expired on/) });
  });

  it('an HSTS of a day without includeSubDomains warns', async () => {
    const leaf = await issued(200);
    const found = byId(await probeTls(await serve({ cert: leaf.cert, key: leaf.private, hsts: 'max-age=86400' }), { now: now(), ca: ca.cert }));
    expect(found['tls.hsts']).toMatchObject({ status: 'warn', summary: expect.stringMatching(/max-age under a year, without includeSubDomains/) });
  });

  it('nothing listening: one tls.probe failure, nothing else', async () => {
    const port = await freePort();
    const found = await probeTls(new URL(`https://127.0.0.1:${port}/`), { now: now() });
    expect(found).toEqual([expect.objectContaining({ id: 'tls.probe', status: 'fail', summary: `could not reach 127.0.0.1:${port} (ECONNREFUSED)` })]);
  });
});
