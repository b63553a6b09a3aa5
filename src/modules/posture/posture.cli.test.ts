/**
 * `custos doctor` as operators and CI run it (in process, on the suite's database): the exit
 * status (1 on any failure, 0 on warnings, 2 on a usage error), the stable JSON shape, `--ci` and
 * CI=true turning the embedded defaults' failures into warnings but never a tampered audit log, a
 * probe of a running server with `--url`, and a vault that will not open (a keyring readable by
 * others) reported with its reason, without doctor making a new keyring.
 */
import { chmodSync, existsSync, readFileSync, renameSync } from 'node:fs';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../app.ts';
import { main } from '../../cli/main.ts';
import type { Io } from '../../cli/io.ts';
import { loadConfig } from '../../config/config.ts';
import { loadTls } from '../../http/tls.ts';
import { openRuntime, type Runtime } from '../../runtime.ts';
import { freePort, rootKey } from '../../../test/resilience/harness.ts';
import { testDatabase, TEST_DIALECT, type TestDatabase } from '../../../test/support/store.ts';
import type { CheckResult } from './finding.ts';

interface Report {
  status: string;
  checks: CheckResult[];
}

async function doctor(env: Record<string, string>, ...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (l) => void out.push(l), err: (l) => void err.push(l), progress: () => undefined, done: () => undefined };
  const code = await main(['doctor', ...args], io, env);
  const json = args.includes('--json') && code !== 2 ? (JSON.parse(out.join('\n')) as Report) : undefined;
  const check = (id: string) => json?.checks.find((c) => c.id === id);
  return { code, out, err, json, check };
}

const quiet = { CUSTOS_LOG_LEVEL: 'silent' };

describe(`custos doctor: exit status and JSON (${TEST_DIALECT})`, { timeout: 60_000 }, () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  let runtime: Runtime;
  beforeAll(async () => {
    db = testDatabase();
    const deadRegistry = `http://127.0.0.1:${await freePort()}/`;
    env = { ...db.env, ...quiet, CUSTOS_ROOT_KEY: rootKey(), CUSTOS_PLAIN_HTTP: 'true', CUSTOS_TRUST_PROXY: '127.0.0.1', PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', npm_config_registry: deadRegistry };
    runtime = await openRuntime(loadConfig(env), { background: false });
    await runtime.audit.append({ actor: 'cli', action: 'apikey.create', recordId: 'key_test', fields: [], outcome: 'success' });
    await runtime.audit.chainPending();
  });
  afterAll(async () => {
    await runtime?.close();
    await db?.cleanup();
  });

  it('a sound vault exits 0 with warnings only, in the stable JSON shape; npm audit is run and its registry reported unreachable', async () => {
    const r = await doctor(env, '--json');
    expect(r.code, r.out.join('\n')).toBe(0);
    expect(r.json?.status).toBe('warn');
    expect(Object.keys(r.json!)).toEqual(['status', 'checks']);
    for (const c of r.json!.checks) {
      expect(Object.keys(c)).toEqual(['id', 'status', 'summary', 'fix']);
      expect(['pass', 'warn', 'fail']).toContain(c.status);
    }
    expect(r.json!.checks.map((c) => c.id)).toEqual([
      'tls.config',
      'files.permissions',
      'keys.root-location',
      'secrets.weak',
      'keys.age',
      'audit.verify',
      'staff.mfa',
      'staff.sessions',
      'staff.training',
      'apikeys.unused',
      'retention.overdue',
      'rights.deadlines',
      'runtime.node',
      'dependencies.advisories',
    ]);
    expect(r.check('dependencies.advisories')).toMatchObject({ status: 'warn', summary: expect.stringMatching(/could not be reached \(npm reported ECONNREFUSED\)/) });
    expect(r.check('tls.config')?.status).toBe('warn');
  });

  it('a tampered audit row exits 1, with --ci and CI=true too; the text form names it with its fix', async () => {
    const row = await runtime.store.db.selectFrom('audit_log').select(['id', 'action']).where('action', '=', 'apikey.create').executeTakeFirstOrThrow();
    await runtime.store.db.updateTable('audit_log').set({ action: 'apikey.revoke' }).where('id', '=', row.id).execute();
    try {
      for (const [args, extra] of [[['--json', '--offline'], {}], [['--json', '--offline', '--ci'], {}], [['--json', '--offline'], { CI: 'true' }]] as const) {
        const r = await doctor({ ...env, ...extra }, ...args);
        expect(r.code).toBe(1);
        expect(r.json?.status).toBe('fail');
        expect(r.check('audit.verify')).toMatchObject({ status: 'fail', summary: expect.stringMatching(new RegExp(`audit tree BROKEN at (leaf \\d+, )?entry ${row.id}:`)) });
      }
      const text = await doctor(env, '--offline');
      expect(text.code).toBe(1);
      const at = text.out.findIndex((l) => l.startsWith('FAIL  audit.verify'));
      expect(at).toBeGreaterThanOrEqual(0);
      expect(text.out[at + 1]).toMatch(/^\s+fix: treat it as a possible breach/);
      expect(text.out.at(-1)).toMatch(/^custos doctor: fail \(1 failed, \d+ warnings, \d+ passed\)$/);
    } finally {
      await runtime.store.db.updateTable('audit_log').set({ action: row.action }).where('id', '=', row.id).execute();
    }
    expect((await doctor(env, '--json', '--offline')).code).toBe(0);
    // Each run told detection (audit.verify_failed): one audit_tamper alert for the incident.
    const alerts = await runtime.store.db.selectFrom('detection_alerts').select(['rule', 'detail']).where('rule', '=', 'audit_tamper').execute();
    expect(alerts).toHaveLength(1);
    expect(JSON.parse(alerts[0]!.detail)).toMatchObject({ check: 'tree' });
  });

  it("the decoy API key planted by custos honeytoken plant is never named as unused; a real key as old is", async () => {
    const planted = await runtime.detection.honeytokens.plant({ customers: 0, cards: 0, emailDomain: 'example.com' });
    const real = await runtime.apiKeys.create({ name: 'old key', purposes: ['account'] });
    const longAgo = new Date(Date.now() - 120 * 86_400_000).toISOString();
    await runtime.store.db.updateTable('api_keys').set({ created_at: longAgo }).where('id', 'in', [planted.api_key.id, real.info.id]).execute();
    const r = await doctor(env, '--json', '--offline');
    expect(r.check('apikeys.unused')).toMatchObject({ status: 'warn', summary: expect.stringContaining(real.info.id) });
    expect(r.check('apikeys.unused')?.summary).not.toContain(planted.api_key.id);
    await runtime.apiKeys.revoke(real.info.id);
  });

  it('usage errors exit 2', async () => {
    expect((await doctor(env, '--url', 'http://127.0.0.1:8443')).code).toBe(2);
    expect((await doctor(env, '--url', 'not a url')).code).toBe(2);
    expect((await doctor(env, 'now')).code).toBe(2);
    expect((await doctor(env, '--ca', join(db.dir, 'missing.pem'))).code).toBe(2);
  });
});

describe(`custos doctor: the embedded default (${TEST_DIALECT})`, { timeout: 60_000 }, () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  let keyring: string;
  beforeAll(async () => {
    db = testDatabase();
    env = { ...db.env, ...quiet, CUSTOS_HOST: '127.0.0.1' };
    const config = loadConfig(env);
    const runtime = await openRuntime(config, { background: false });
    await runtime.close();
    await loadTls(config);
    keyring = join(config.dataDir, 'keyring.json');
  });
  afterAll(async () => db?.cleanup());

  it('the self-signed certificate fails; --ci or CI=true make it a warning and the exit 0; the keyring beside the data warns', async () => {
    const strict = await doctor(env, '--json', '--offline');
    expect(strict.code).toBe(1);
    expect(strict.check('tls.config')).toMatchObject({ status: 'fail', summary: expect.stringMatching(/self-signed certificate of the embedded default/) });
    expect(strict.check('keys.root-location')?.status).toBe('warn');
    expect(strict.json!.checks.filter((c) => c.status === 'fail').map((c) => c.id)).toEqual(['tls.config']);
    for (const [args, extra] of [[['--json', '--offline', '--ci'], {}], [['--json', '--offline'], { CI: 'true' }]] as const) {
      const r = await doctor({ ...env, ...extra }, ...args);
      expect(r.code).toBe(0);
      expect(r.json?.status).toBe('warn');
      expect(r.check('tls.config')?.status).toBe('warn');
    }
  });

  it('--url probes the running server: TLS 1.2+ with AEAD suites and HSTS pass, its self-signed certificate warns in CI', async () => {
    const config = loadConfig(env);
    const runtime = await openRuntime(config, { background: false });
    let app: FastifyInstance | undefined;
    try {
      app = await buildApp(runtime, { tls: await loadTls(config) });
      const port = await freePort();
      await app.listen({ host: '127.0.0.1', port });
      const r = await doctor(env, '--url', `https://127.0.0.1:${port}`, '--ci', '--json', '--offline');
      expect(r.code, JSON.stringify(r.json)).toBe(0);
      expect(r.check('tls.protocols')?.status).toBe('pass');
      expect(r.check('tls.ciphers')?.status).toBe('pass');
      expect(r.check('tls.hsts')?.status).toBe('pass');
      expect(r.check('tls.certificate')).toMatchObject({ status: 'warn', summary: expect.stringMatching(/not trusted/) });
      const trusted = await doctor(env, '--url', `https://127.0.0.1:${port}`, '--ca', join(config.dataDir, 'tls-cert.pem'), '--json', '--offline');
      expect(trusted.check('tls.certificate')?.status).toBe('pass');
    } finally {
      await app?.close();
      await runtime.close();
    }
  });

  it('a keyring readable by others fails, even with --ci, and the vault is reported as not opened; a missing keyring is not made', async () => {
    const before = readFileSync(keyring, 'utf8');
    chmodSync(keyring, 0o644);
    try {
      const r = await doctor(env, '--json', '--offline', '--ci');
      expect(r.code).toBe(1);
      expect(r.check('files.permissions')).toMatchObject({ status: 'fail', summary: expect.stringMatching(/keyring file .* is mode 0644: every user can read it/) });
      expect(r.check('database')).toMatchObject({ status: 'fail', summary: expect.stringMatching(/could not be opened: the keyring file .* is readable by others/) });
      expect(r.check('audit.verify')).toBeUndefined();
    } finally {
      chmodSync(keyring, 0o600);
    }
    expect(readFileSync(keyring, 'utf8')).toBe(before);

    renameSync(keyring, `${keyring}.away`);
    try {
      const r = await doctor(env, '--json', '--offline', '--ci');
      expect(r.code).toBe(1);
      expect(r.check('database')?.summary).toMatch(/no keyring file/);
      expect(existsSync(keyring)).toBe(false);
    } finally {
      renameSync(`${keyring}.away`, keyring);
    }
  });
});
