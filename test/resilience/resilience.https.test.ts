import { existsSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { connect, createServer, type ConnectionOptions, type TLSSocket } from 'node:tls';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DIALECT, type TestDatabase } from '../support/store.ts';
import { CHILD_TIMEOUT, childEnv, insecureGet, killChildren, newDatabase, runNode, MAIN, startServer, type ServerChild } from './harness.ts';

/**
 * HTTPS by default (OWASP ASVS 5.0 12.1.1, 12.1.2; DESIGN.md "Security defaults"): started with
 * no TLS settings, the server makes a self-signed certificate in its data folder (private key mode
 * 0600), speaks TLS 1.2 and 1.3 with AEAD suites only and refuses TLS 1.1 and CBC suites; the
 * local keyring is created with mode 0600; and plain HTTP without a trusted proxy is refused.
 */
type Outcome = { ok: true; protocol: string | null; cipher: string } | { ok: false; code: string; message: string };

function handshake(port: number, options: ConnectionOptions): Promise<Outcome> {
  return new Promise((resolve) => {
    const socket: TLSSocket = connect({ host: '127.0.0.1', port, rejectUnauthorized: false, servername: 'localhost', ...options }, () => {
      resolve({ ok: true, protocol: socket.getProtocol(), cipher: socket.getCipher().standardName });
      socket.end();
    });
    socket.setTimeout(10_000, () => socket.destroy(new Error('timeout')));
    socket.on('error', (error: Error & { code?: string }) => resolve({ ok: false, code: error.code ?? '', message: error.message }));
  });
}

/** A client that would speak TLS 1.1 if the server let it (OpenSSL refuses it at security level 1). */
const TLS11: ConnectionOptions = { minVersion: 'TLSv1.1', maxVersion: 'TLSv1.1', ciphers: 'DEFAULT:@SECLEVEL=0' };
/** TLS 1.2 with a CBC (non-AEAD) suite only. */
const CBC: ConnectionOptions = { maxVersion: 'TLSv1.2', ciphers: 'ECDHE-ECDSA-AES128-SHA256:ECDHE-ECDSA-AES128-SHA:@SECLEVEL=0' };

describe(`HTTPS by default (${TEST_DIALECT})`, { timeout: CHILD_TIMEOUT }, () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  let server: ServerChild;

  beforeAll(async () => {
    db = await newDatabase();
    // No CUSTOS_PLAIN_HTTP, no CUSTOS_TRUST_PROXY, no certificate, no CUSTOS_ROOT_KEY.
    env = childEnv(db, { CUSTOS_PLAIN_HTTP: undefined, CUSTOS_TRUST_PROXY: undefined, CUSTOS_LOG_LEVEL: 'warn' });
    server = await startServer(env, { tls: true });
  }, CHILD_TIMEOUT);
  afterAll(async () => {
    await killChildren();
    await db.cleanup();
  });

  it('serves HTTPS with a self-signed certificate whose key file is mode 0600, and HSTS', async () => {
    const cert = join(db.dir, 'tls-cert.pem');
    const key = join(db.dir, 'tls-key.pem');
    expect(existsSync(cert)).toBe(true);
    expect(existsSync(key)).toBe(true);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(readFileSync(cert, 'utf8')).toContain('BEGIN CERTIFICATE');

    const health = await insecureGet(`${server.url}/health`);
    expect(health.status).toBe(200);
    const hsts = String(health.headers['strict-transport-security']);
    expect(Number(/max-age=(\d+)/.exec(hsts)?.[1])).toBeGreaterThanOrEqual(31_536_000);
    expect(hsts).toMatch(/includeSubDomains/i);
    // Plain HTTP on the same port gets no answer from the API.
    const plain = await fetch(`http://127.0.0.1:${server.port}/health`, { signal: AbortSignal.timeout(5000) }).then(
      (r) => r.status,
      () => 0,
    );
    expect(plain).not.toBe(200);
  });

  it('creates the local keyring with mode 0600', () => {
    const keyring = join(db.dir, 'keyring.json');
    expect(existsSync(keyring)).toBe(true);
    expect(statSync(keyring).mode & 0o777).toBe(0o600);
  });

  it('negotiates TLS 1.3 by default and TLS 1.2 with an AEAD suite when asked', async () => {
    const best = await handshake(server.port, {});
    expect(best).toMatchObject({ ok: true, protocol: 'TLSv1.3' });
    const v12 = await handshake(server.port, { maxVersion: 'TLSv1.2' });
    expect(v12).toMatchObject({ ok: true, protocol: 'TLSv1.2' });
    expect(v12.ok && v12.cipher).toMatch(/_(GCM|CHACHA20_POLY1305)_/);
  });

  it('refuses TLS 1.1 and CBC suites (the same client succeeds against a lenient server: control)', async () => {
    const lenient = createServer({
      cert: readFileSync(join(db.dir, 'tls-cert.pem')),
      key: readFileSync(join(db.dir, 'tls-key.pem')),
      minVersion: 'TLSv1',
      ciphers: 'DEFAULT:@SECLEVEL=0',
    }, (socket) => socket.end());
    await new Promise<void>((resolve) => lenient.listen(0, '127.0.0.1', resolve));
    try {
      const address = lenient.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      expect(await handshake(port, TLS11)).toMatchObject({ ok: true, protocol: 'TLSv1.1' });
      expect(await handshake(port, CBC)).toMatchObject({ ok: true, protocol: 'TLSv1.2' });
    } finally {
      await new Promise((resolve) => lenient.close(resolve));
    }
    const old = await handshake(server.port, TLS11);
    expect(old.ok).toBe(false);
    expect(old.ok ? '' : old.code).toMatch(/PROTOCOL_VERSION|UNSUPPORTED_PROTOCOL|HANDSHAKE_FAILURE/);
    const cbc = await handshake(server.port, CBC);
    expect(cbc.ok).toBe(false);
  });

  it('refuses CUSTOS_PLAIN_HTTP=true without CUSTOS_TRUST_PROXY, naming the variable', async () => {
    const r = await runNode(MAIN, [], { ...env, CUSTOS_PLAIN_HTTP: 'true', CUSTOS_PORT: String(server.port + 1) });
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(r.stderr).toContain('CUSTOS_TRUST_PROXY');
    expect(r.stderr).toContain('CUSTOS_PLAIN_HTTP');
  });
});
