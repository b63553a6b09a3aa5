import { spawn } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DIALECT, type TestDatabase } from '../support/store.ts';
import { apiClient } from '../resilience/api-client.ts';
import { commands } from '../../src/cli/main.ts';
import { CHILD_TIMEOUT, childEnv, CLI, killChildren, MAIN, newDatabase, rootKey, runCli, runNode, startServer, tempDir } from '../resilience/harness.ts';

/**
 * The `custos` command's contract with scripts and operators: results alone on standard output
 * (an API key can be captured with `$(custos apikey create …)`), messages on standard error,
 * exit 0 on success, 2 on a usage error, non-zero on any failure; configuration errors name the
 * variable (never its value); the server and the CLI refuse a broken inventory naming file and
 * line. Every case runs the real command as a child process.
 */
const KEY = /^ck_[0-9A-HJKMNP-TV-Z]{26}_[A-Za-z0-9_-]{43}$/;

describe(`custos CLI contract (${TEST_DIALECT})`, { timeout: CHILD_TIMEOUT }, () => {
  let db: TestDatabase;
  let env: Record<string, string>;

  beforeAll(async () => {
    db = await newDatabase();
    env = childEnv(db, { CUSTOS_ROOT_KEY: rootKey(), CUSTOS_LOG_LEVEL: 'warn' });
  }, CHILD_TIMEOUT);
  afterAll(async () => {
    await killChildren();
    await db.cleanup();
  });

  it('migrate exits 0 and says so', async () => {
    const r = await runCli(['migrate'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('database schema is up to date\n');
  });

  it('apikey create prints only the key on stdout, its message on stderr; list shows the id, never the secret', async () => {
    const r = await runCli(['apikey', 'create', '--name', 'storefront', '--purposes', 'account,support'], env);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout.endsWith('\n')).toBe(true);
    const lines = r.stdout.slice(0, -1).split('\n');
    expect(lines).toHaveLength(1);
    const key = lines[0]!;
    expect(key).toMatch(KEY);
    expect(r.stderr).toMatch(/created key_/);
    expect(r.stderr).not.toContain(key);
    const id = `key_${key.split('_')[1]!}`;
    const secret = key.slice(`ck_${id.slice(4)}_`.length);

    for (const args of [['apikey', 'list'], ['apikey', 'list', '--json']]) {
      const list = await runCli(args, env);
      expect(list.code, list.stderr).toBe(0);
      expect(list.stdout).toContain(id);
      expect(list.stdout).toContain('storefront');
      expect(list.stdout + list.stderr).not.toContain(secret);
      expect(list.stdout).not.toMatch(/secret|hash/i);
    }
  });

  it('apikey create with an unknown purpose fails on stderr and prints nothing on stdout', async () => {
    const r = await runCli(['apikey', 'create', '--name', 'x', '--purposes', 'account,telepathy'], env);
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('telepathy');
    const list = await runCli(['apikey', 'list', '--json'], env);
    expect(list.stdout).not.toContain('"name": "x"');
  });

  it.each([
    { args: [], why: 'no command' },
    { args: ['apikey', 'create', '--name', 'only-a-name'], why: 'create without --purposes' },
    { args: ['apikey', 'create', '--purposes', 'account'], why: 'create without --name' },
    { args: ['apikey', 'revoke'], why: 'revoke without an id' },
    { args: ['apikey'], why: 'apikey without a subcommand' },
    { args: ['apikey', 'list', '--bogus'], why: 'an unknown option' },
    { args: ['keys', 'rotate', '--batch-size', 'many'], why: 'a bad option value' },
    { args: ['audit'], why: 'audit without verify' },
    { args: ['frobnicate'], why: 'an unknown command' },
  ])('exits 2 with usage on stderr for $why', async ({ args }) => {
    const r = await runCli(args, env);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toMatch(/usage|needs|must|unknown|custos \w+: /i);
  });

  it('custos help lists every command and subcommand the dispatcher accepts', async () => {
    const help = await runCli(['help'], env);
    expect(help.code).toBe(0);
    const listed = new Map<string, Set<string>>();
    for (const [, command, sub] of help.stdout.matchAll(/^ {2}([a-z-]+)(?: ([a-z|-]+))?/gm)) {
      const subs = listed.get(command!) ?? new Set<string>();
      for (const s of sub?.split('|') ?? []) subs.add(s);
      listed.set(command!, subs);
    }
    expect([...listed.keys()].sort()).toEqual(['migrate', 'serve', ...commands().keys()].sort());
    // Each command names the subcommands it accepts when given one it does not.
    const names = [...commands().keys()];
    const answers = await Promise.all(names.map((command) => runCli([command, 'frobnicate'], env)));
    for (const [i, command] of names.entries()) {
      const refused = answers[i]!;
      expect(refused.code).toBe(2);
      // A command without subcommands (doctor) names the word it did not expect.
      if (listed.get(command)!.size === 0) {
        expect(refused.stderr).toMatch(new RegExp(`^custos ${command}: unexpected frobnicate`));
        continue;
      }
      const accepted = new RegExp(`^custos ${command}: ${command} ([a-z|-]+)`).exec(refused.stderr)?.[1];
      expect(accepted, refused.stderr).toBeDefined();
      expect([...listed.get(command)!].sort(), command).toEqual(accepted!.split('|').sort());
    }
    for (const line of ['keys rotate --root', 'keys rotate --key NAME', 'keys retire', 'staff roles define', 'staff role-changes approve|deny'])
      expect(help.stdout).toContain(`  ${line}`);
  });

  it('apikey revoke makes the key fail at once on a running server', async () => {
    const create = (name: string) => runCli(['apikey', 'create', '--name', name, '--purposes', 'account'], env);
    const [doomed, other] = await Promise.all([create('doomed'), create('bystander')]);
    const key = doomed.stdout.trim();
    const server = await startServer(env);
    const api = apiClient(server.url, key);
    const bystander = apiClient(server.url, other.stdout.trim());
    const probe = '/v1/customers/cus_00000000000000000000000000';
    expect((await api.get(probe, 'account')).status).toBe(404);

    const revoke = await runCli(['apikey', 'revoke', `key_${key.split('_')[1]!}`], env);
    expect(revoke.code, revoke.stderr).toBe(0);
    expect(revoke.stdout).toMatch(/revoked/);
    const after = await api.get(probe, 'account');
    expect(after.status).toBe(401);
    expect((after.body as { error: { code: string } }).error.code).toBe('APIKEY_INVALID');
    expect((await api.post('/v1/customers', { name: 'After Revocation' })).status).toBe(401);
    expect((await bystander.get(probe, 'account')).status).toBe(404);

    const list = await runCli(['apikey', 'list'], env);
    expect(list.stdout).toMatch(new RegExp(`key_${key.split('_')[1]!}\\trevoked`));
    expect((await server.stop('SIGTERM')).code).toBe(0);
  });

  it('a bad configuration value stops the CLI, naming the variable and not echoing its value', async () => {
    const r = await runCli(['migrate'], { ...env, CUSTOS_PORT: 'port-xyzzy' });
    expect(r.code).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('CUSTOS_PORT');
    expect(r.stderr).not.toContain('xyzzy');
    // A database URL carries a password: a bad one is named, never printed.
    const url = await runCli(['migrate'], { ...env, DATABASE_URL: 'mysql://admin:hunter2-very-secret@db.internal/shop' });
    expect(url.code).not.toBe(0);
    expect(url.stderr).toContain('DATABASE_URL');
    expect(url.stderr).not.toContain('hunter2');
  });

  it('the server (node src/main.ts, what npm start runs) exits non-zero naming CUSTOS_PORT', async () => {
    const r = await runNode(MAIN, [], { ...env, CUSTOS_PORT: 'abc' });
    expect(r.code).not.toBe(0);
    expect(r.code).not.toBeNull();
    expect(r.stdout + r.stderr).toContain('CUSTOS_PORT');
  });

  it('a bad shop inventory stops start-up, naming the file and the line', async () => {
    const file = join(tempDir(), 'shop-inventory.yaml');
    writeFileSync(
      file,
      [
        'version: 1',
        'extends: default',
        'purposes:',
        '  loyalty:',
        '    description: Points and rewards.',
        'collections:',
        '  customers:',
        '    fields:',
        '      loyalty_tier:',
        '        type: string',
        '        category: preference',
        '        protection: sealed-with-wax',
        '        retention: account_lifetime',
        '        export: true',
        '        purposes:',
        '          loyalty: { basis: consent }',
        '',
      ].join('\n'),
    );
    const server = await runNode(MAIN, [], { ...env, CUSTOS_INVENTORY: file });
    expect(server.code).not.toBe(0);
    expect(server.code).not.toBeNull();
    expect(server.stderr).toContain(`${file}:12`);
    expect(server.stderr).toContain('protection');

    const cli = await runCli(['apikey', 'list'], { ...env, CUSTOS_INVENTORY: file });
    expect(cli.code).not.toBe(0);
    expect(cli.stdout).toBe('');
    expect(cli.stderr).toContain(`${file}:12`);

    // The same file with the line fixed is accepted (so the line, not the file, was the problem).
    writeFileSync(file, readFileSync(file, 'utf8').replace('sealed-with-wax', 'randomised'));
    const fixed = await runCli(['apikey', 'create', '--name', 'loyal', '--purposes', 'loyalty'], { ...env, CUSTOS_INVENTORY: file });
    expect(fixed.code, fixed.stderr).toBe(0);
    expect(fixed.stdout.trim()).toMatch(KEY);
  });
});

/** `node script args` in `cwd` (the harness runs children in the repository); killed after 60 s. */
async function runIn(cwd: string, script: string, args: readonly string[], env: Record<string, string>) {
  const child = spawn(process.execPath, [script, ...args], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), 60_000);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)));
  clearTimeout(timer);
  return { code, stdout, stderr };
}

/**
 * Run from the wrong folder, a command must not make a new, empty vault there and answer from it;
 * and `custos` and the server read an optional `.env` in the working directory, the real
 * environment winning, with a warning for a root key kept in it.
 */
describe('custos in a folder of its own: data folder and .env', { timeout: CHILD_TIMEOUT }, () => {
  const bare = { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', CUSTOS_LOG_LEVEL: 'warn' };
  afterAll(async () => killChildren());

  it.each([['apikey', 'list'], ['keys', 'status'], ['audit', 'verify'], ['staff', 'list']])(
    'custos %s %s run from the wrong folder exits 78 naming CUSTOS_DATA_DIR and the folder, and creates no empty vault there',
    async (...args) => {
      const cwd = tempDir();
      const r = await runIn(cwd, CLI, args, bare);
      expect(r.code, r.stderr).toBe(78);
      expect(r.stdout).toBe('');
      expect(r.stderr).toContain('CUSTOS_DATA_DIR');
      expect(r.stderr).toContain(join(cwd, '.custos'));
      expect(existsSync(join(cwd, '.custos'))).toBe(false);
    },
  );

  it('migrate (like serve) still creates the data folder', async () => {
    const cwd = tempDir();
    const r = await runIn(cwd, CLI, ['migrate'], bare);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(cwd, '.custos', 'custos.db'))).toBe(true);
    const list = await runIn(cwd, CLI, ['apikey', 'list'], bare);
    expect(list.code, list.stderr).toBe(0);
  });

  it('custos reads .env in the working directory, and the real environment wins over it', async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, '.env'), 'CUSTOS_DATA_DIR=from-dotenv\n');
    const r = await runIn(cwd, CLI, ['migrate'], bare);
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(cwd, 'from-dotenv', 'custos.db'))).toBe(true);
    expect(existsSync(join(cwd, '.custos'))).toBe(false);

    const real = await runIn(cwd, CLI, ['migrate'], { ...bare, CUSTOS_DATA_DIR: 'from-environment' });
    expect(real.code, real.stderr).toBe(0);
    expect(existsSync(join(cwd, 'from-environment', 'custos.db'))).toBe(true);
  });

  it('a root key found in .env is used but warned about, without printing it', async () => {
    const cwd = tempDir();
    const key = rootKey();
    writeFileSync(join(cwd, '.env'), `# the shop's settings\nCUSTOS_ROOT_KEY=${key}\nCUSTOS_DATA_DIR=data\n`);
    const r = await runIn(cwd, CLI, ['migrate'], bare);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/warning: .*\.env holds CUSTOS_ROOT_KEY/);
    expect(r.stderr + r.stdout).not.toContain(key);
    // The key came from .env, so no keyring file was made.
    expect(existsSync(join(cwd, 'data', 'keyring.json'))).toBe(false);
  });

  it('the server (node src/main.ts) reads .env too: a bad port there stops it, naming CUSTOS_PORT', async () => {
    const cwd = tempDir();
    writeFileSync(join(cwd, '.env'), 'CUSTOS_PORT=port-from-dotenv\nCUSTOS_DATA_DIR=data\n');
    const r = await runIn(cwd, MAIN, [], bare);
    expect(r.code).toBe(78);
    expect(r.stderr).toContain('CUSTOS_PORT');
  });
});
