/**
 * The checks that read only the configuration and the files (no database, no network): key files
 * readable by others, the root key beside the data, weak or default secrets, the server's own
 * certificate, the Node.js end-of-life table, and the CI mode. Each finding is provoked on real
 * files in a temporary folder; none quotes a secret.
 */
import { randomBytes } from 'node:crypto';
import { chmodSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { generate } from 'selfsigned';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig, type Config } from '../../config/config.ts';
import { loadTls } from '../../http/tls.ts';
import { checkFilePermissions, checkRootLocation } from './files.ts';
import { toReport, type Finding } from './finding.ts';
import { checkNodeRuntime } from './node-eol.ts';
import { checkSecrets, secretBytes, weakKeyReason } from './secrets.ts';
import { checkTlsConfig } from './tls-config.ts';

const base = mkdtempSync(join(tmpdir(), 'custos-posture-'));
afterAll(() => rmSync(base, { recursive: true, force: true }));
let n = 0;

/** A data folder of its own (0700, as the server makes it) and the configuration over it. */
function setup(): { dir: string; config: (env?: Record<string, string>) => Config } {
  const dir = join(base, `case-${++n}`);
  mkdirSync(join(dir, 'data'), { recursive: true, mode: 0o700 });
  return { dir, config: (env = {}) => loadConfig({ CUSTOS_DATA_DIR: join(dir, 'data'), ...env }, dir) };
}

function keyring(config: Config, key: Buffer = randomBytes(32), mode = 0o600): string {
  const file = join(config.dataDir, 'keyring.json');
  writeFileSync(file, JSON.stringify({ version: 1, root_key: key.toString('base64'), created_at: new Date().toISOString() }), { mode });
  chmodSync(file, mode);
  return file;
}

const now = new Date();
const expectStatus = (f: Finding, status: Finding['status'], summary?: RegExp) => {
  expect(f.status, f.summary).toBe(status);
  if (summary !== undefined) expect(f.summary).toMatch(summary);
  if (status === 'pass') expect(f.fix).toBeNull();
  else expect(f.fix).toEqual(expect.any(String));
};

describe('files.permissions', () => {
  it('a keyring file others can read fails; 0600 passes', () => {
    const { config } = setup();
    const file = keyring(config());
    expectStatus(checkFilePermissions(config()), 'pass');
    chmodSync(file, 0o644);
    expectStatus(checkFilePermissions(config()), 'fail', /keyring file .* is mode 0644: every user can read it/);
    chmodSync(file, 0o640);
    expectStatus(checkFilePermissions(config()), 'fail', /mode 0640: its group can read it/);
  });

  it('a root key file or TLS key others can read fails; a missing configured key file fails', () => {
    const { dir, config } = setup();
    const rootFile = join(dir, 'root.key');
    writeFileSync(rootFile, randomBytes(32).toString('base64'), { mode: 0o644 });
    chmodSync(rootFile, 0o644);
    expectStatus(checkFilePermissions(config({ CUSTOS_ROOT_KEY_FILE: rootFile })), 'fail', /CUSTOS_ROOT_KEY_FILE .* mode 0644/);
    const c = loadConfig({ CUSTOS_DATA_DIR: join(dir, 'data'), CUSTOS_ROOT_KEY_FILE: join(dir, 'gone.key') }, dir);
    expectStatus(checkFilePermissions(c), 'fail', /CUSTOS_ROOT_KEY_FILE .* does not exist/);
  });

  it('a data folder or SQLite file others can read warns; a key file owned by another user warns', () => {
    const { config } = setup();
    keyring(config());
    writeFileSync(join(config().dataDir, 'custos.db'), '', { mode: 0o644 });
    chmodSync(join(config().dataDir, 'custos.db'), 0o644);
    expectStatus(checkFilePermissions(config()), 'warn', /SQLite database .* mode 0644/);
    chmodSync(join(config().dataDir, 'custos.db'), 0o600);
    chmodSync(config().dataDir, 0o755);
    expectStatus(checkFilePermissions(config()), 'warn', /data folder .* mode 0755/);
    chmodSync(config().dataDir, 0o700);
    const me = process.getuid?.() ?? 0;
    expectStatus(checkFilePermissions(config(), me + 1), 'warn', new RegExp(`owned by uid ${me}, not by the user running Custos \\(uid ${me + 1}\\)`));
  });
});

describe('keys.root-location', () => {
  it('the embedded keyring warns (beside the data); an environment key passes; a .env holding it warns', () => {
    const { dir, config } = setup();
    expectStatus(checkRootLocation(config(), dir), 'warn', /beside the data it protects/);
    const env = { CUSTOS_ROOT_KEY: randomBytes(32).toString('base64') };
    expectStatus(checkRootLocation(config(env), dir), 'pass');
    writeFileSync(join(dir, '.env'), `CUSTOS_ROOT_KEY=${env.CUSTOS_ROOT_KEY}\n`);
    expectStatus(checkRootLocation(config(env), dir), 'warn', /\.env holds CUSTOS_ROOT_KEY/);
  });

  it('a root key file in a folder that also holds the data folder warns; one elsewhere passes', () => {
    const { dir, config } = setup();
    const near = join(dir, 'root.key');
    writeFileSync(near, randomBytes(32).toString('base64'), { mode: 0o600 });
    expectStatus(checkRootLocation(config({ CUSTOS_ROOT_KEY_FILE: near }), dir), 'warn', /lies in a folder that also holds the data/);
    const apart = join(base, `keys-${n}`);
    mkdirSync(apart, { mode: 0o700 });
    writeFileSync(join(apart, 'root.key'), randomBytes(32).toString('base64'), { mode: 0o600 });
    expectStatus(checkRootLocation(config({ CUSTOS_ROOT_KEY_FILE: join(apart, 'root.key') }), dir), 'pass');
  });
});

describe('secrets.weak', () => {
  it('root keys that are not random bytes fail, without quoting them', () => {
    expect(weakKeyReason(Buffer.alloc(32))).toBe('one byte repeated');
    expect(weakKeyReason(Buffer.from(Array.from({ length: 32 }, (_, i) => i)))).toBe('a counting sequence');
    expect(weakKeyReason(Buffer.from('The quick brown fox jumps over 1'))).toMatch(/printable text/);
    expect(weakKeyReason(Buffer.from('abababababababababababababababab'.replace(/b/g, '\u0001')))).toBeDefined();
    expect(weakKeyReason(randomBytes(32))).toBeUndefined();
    const { config } = setup();
    const text = Buffer.from('The quick brown fox jumps over 1').toString('base64');
    const found = checkSecrets(config({ CUSTOS_ROOT_KEY: text }));
    expectStatus(found, 'fail', /root key of CUSTOS_ROOT_KEY is printable text/);
    expect(JSON.stringify(found)).not.toContain(text);
    expectStatus(checkSecrets(config({ CUSTOS_ROOT_KEY: randomBytes(32).toString('base64') })), 'pass');
    const weakRing = setup();
    keyring(weakRing.config(), Buffer.alloc(32, 7));
    expectStatus(checkSecrets(weakRing.config()), 'fail', /root key of the keyring file is one byte repeated/);
  });

  it('a well-known database password fails, a short Redis password warns, neither is quoted', () => {
    const { config } = setup();
    const found = checkSecrets(config({ CUSTOS_ROOT_KEY: randomBytes(32).toString('base64'), DATABASE_URL: 'postgres://custos:Postgres@db.internal:5432/custos' }));
    expectStatus(found, 'fail', /DATABASE_URL uses a well-known default password/);
    expect(JSON.stringify(found)).not.toContain('Postgres@');
    const short = checkSecrets(config({ CUSTOS_ROOT_KEY: randomBytes(32).toString('base64'), REDIS_URL: 'redis://:k3y-9x@cache:6379' }));
    expectStatus(short, 'warn', /REDIS_URL uses a password of 6 characters/);
    expect(JSON.stringify(short)).not.toContain('k3y-9x');
  });

  it('a TLS private key under 112-bit security fails', async () => {
    const { dir, config } = setup();
    const weak = await generate([{ name: 'commonName', value: 'shop.example' }], { keyType: 'rsa', keySize: 1024, algorithm: 'sha256' });
    writeFileSync(join(dir, 'cert.pem'), weak.cert);
    writeFileSync(join(dir, 'key.pem'), weak.private, { mode: 0o600 });
    const env = { CUSTOS_ROOT_KEY: randomBytes(32).toString('base64'), CUSTOS_TLS_CERT: join(dir, 'cert.pem'), CUSTOS_TLS_KEY: join(dir, 'key.pem') };
    expectStatus(checkSecrets(config(env)), 'fail', /TLS private key is RSA 1024 bits/);
  });

  it('a webhook secret under 32 bytes fails; whsec_ + base64 counts the decoded bytes', () => {
    expect(secretBytes(`whsec_${randomBytes(24).toString('base64')}`)).toBe(24);
    expect(secretBytes('short-secret')).toBe(12);
    const { config } = setup();
    const c = config({ CUSTOS_ROOT_KEY: randomBytes(32).toString('base64') });
    const webhook = (...secrets: string[]) => [{ variable: 'CUSTOS_ALERT_WEBHOOK_SECRET', lengths: () => secrets.map(secretBytes) }];
    const short = `whsec_${randomBytes(24).toString('base64')}`;
    const found = checkSecrets(c, webhook(`whsec_${randomBytes(32).toString('base64')}`, short));
    expectStatus(found, 'fail', /CUSTOS_ALERT_WEBHOOK_SECRET holds a secret of 24 bytes, under 32/);
    expect(JSON.stringify(found)).not.toContain(short.slice(6));
    expectStatus(checkSecrets(c, webhook(`whsec_${randomBytes(32).toString('base64')}`)), 'pass');
  });

  it('doctor covers the alert webhook secret of the configuration itself (CUSTOS_ALERT_WEBHOOK_SECRET)', () => {
    const { config } = setup();
    const root = randomBytes(32).toString('base64');
    const alerts = (...secrets: string[]) => config({ CUSTOS_ROOT_KEY: root, CUSTOS_ALERT_WEBHOOK_URL: 'https://alerts.example/hook', CUSTOS_ALERT_WEBHOOK_SECRET: secrets.join(' ') });
    const short = `whsec_${randomBytes(24).toString('base64')}`;
    const found = checkSecrets(alerts(`whsec_${randomBytes(32).toString('base64')}`, short));
    expectStatus(found, 'fail', /CUSTOS_ALERT_WEBHOOK_SECRET holds a secret of 24 bytes, under 32/);
    expect(JSON.stringify(found)).not.toContain(short.slice(6));
    expectStatus(checkSecrets(alerts(`whsec_${randomBytes(32).toString('base64')}`)), 'pass');
  });
});

describe('tls.config', () => {
  it("the embedded default's self-signed certificate fails, and warns in CI mode", async () => {
    const { config } = setup();
    expectStatus(checkTlsConfig(config(), { now, probing: false }), 'warn', /no certificate yet/);
    await loadTls(config());
    const found = checkTlsConfig(config(), { now, probing: false });
    expectStatus(found, 'fail', /self-signed certificate of the embedded default/);
    expect(toReport([found], { ci: false }).status).toBe('fail');
    expect(toReport([found], { ci: true })).toEqual({ status: 'warn', checks: [{ id: 'tls.config', status: 'warn', summary: found.summary, fix: found.fix }] });
  });

  it('a shop certificate: expired fails, expiring within 30 days warns, a key that is not its own fails, a CA-issued one passes', async () => {
    const { dir, config } = setup();
    const files = (name: string, pems: { cert: string; private: string }) => {
      writeFileSync(join(dir, `${name}.crt`), pems.cert);
      writeFileSync(join(dir, `${name}.key`), pems.private, { mode: 0o600 });
      return { CUSTOS_TLS_CERT: join(dir, `${name}.crt`), CUSTOS_TLS_KEY: join(dir, `${name}.key`) };
    };
    const day = 86_400_000;
    const ca = await generate([{ name: 'commonName', value: 'Test CA' }], { keyType: 'ec', notAfterDate: new Date(Date.now() + 900 * day), extensions: [{ name: 'basicConstraints', cA: true }] });
    const leaf = (days: number, from = Date.now() - day) =>
      generate([{ name: 'commonName', value: 'shop.example' }], {
        keyType: 'ec',
        ca: { key: ca.private, cert: ca.cert },
        notBeforeDate: new Date(from),
        notAfterDate: new Date(Date.now() + days * day),
      });
    expectStatus(checkTlsConfig(config(files('good', await leaf(200))), { now, probing: false }), 'pass', /CUSTOS_TLS_CERT until/);
    expectStatus(checkTlsConfig(config(files('soon', await leaf(10))), { now, probing: false }), 'warn', /expires on .*, in (9|10) days/);
    expectStatus(checkTlsConfig(config(files('old', await leaf(-2, Date.now() - 30 * day))), { now, probing: false }), 'fail', /expired on/);
    const other = await leaf(200);
    const mixed = { ...files('mixed', await leaf(200)), CUSTOS_TLS_KEY: files('other', other).CUSTOS_TLS_KEY };
    expectStatus(checkTlsConfig(config(mixed), { now, probing: false }), 'fail', /does not belong to the certificate/);
  });

  it('plain HTTP behind a proxy warns unless the proxy is probed', () => {
    const { config } = setup();
    const c = config({ CUSTOS_PLAIN_HTTP: 'true', CUSTOS_TRUST_PROXY: '127.0.0.1' });
    expectStatus(checkTlsConfig(c, { now, probing: false }), 'warn', /not checked/);
    expectStatus(checkTlsConfig(c, { now, probing: true }), 'pass');
  });
});

describe('runtime.node', () => {
  const at = new Date('2026-12-03T12:00:00Z');
  it('past its end of life fails; within 180 days of it warns; an LTS line with time left passes', () => {
    expectStatus(checkNodeRuntime('v20.19.0', at), 'fail', /reached its end of life on 2026-04-30/);
    expectStatus(checkNodeRuntime('v22.18.0', at), 'warn', /2027-04-30, in 147 days/);
    expectStatus(checkNodeRuntime('v24.21.0', at), 'pass', /supported until 2028-04-30/);
    expectStatus(checkNodeRuntime('v24.21.0', new Date('2028-05-01T00:00:00Z')), 'fail');
  });
  it('a Current (odd) line warns, an ended one fails; older than the table fails; newer warns', () => {
    expectStatus(checkNodeRuntime('v25.2.0', new Date('2026-01-10T00:00:00Z')), 'warn', /not an LTS line/);
    expectStatus(checkNodeRuntime('v25.2.0', at), 'fail');
    expectStatus(checkNodeRuntime('v16.20.2', at), 'fail');
    expectStatus(checkNodeRuntime('v40.0.0', at), 'warn', /newer than the end-of-life table/);
  });
});

describe('the report', () => {
  it('is the worst status; CI mode turns only the marked failures into warnings', () => {
    const f = (id: string, status: Finding['status'], ciWarn?: boolean): Finding => ({ id, status, summary: id, fix: status === 'pass' ? null : 'fix it', ...(ciWarn ? { ciWarn } : {}) });
    expect(toReport([f('a', 'pass'), f('b', 'warn')], { ci: false }).status).toBe('warn');
    expect(toReport([f('a', 'pass'), f('b', 'fail', true)], { ci: true }).status).toBe('warn');
    expect(toReport([f('a', 'fail', true), f('b', 'fail')], { ci: true }).status).toBe('fail');
    expect(Object.keys(toReport([f('a', 'fail', true)], { ci: true }).checks[0]!)).toEqual(['id', 'status', 'summary', 'fix']);
  });
});
