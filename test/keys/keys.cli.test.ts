import { SERVICE_KEY_NAMES } from '../../src/crypto/service-keys.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import type { Io } from '../../src/cli/io.ts';
import { TEST_DIALECT, type TestDatabase } from '../support/store.ts';
import { childEnv, newDatabase, rootKey } from '../resilience/harness.ts';

/**
 * `custos keys` as an operator uses it: status shows every key's versions, ages and what each
 * wraps, and warns past the cryptoperiod; retire destroys only KEK versions that wrap nothing;
 * rotate --key refuses keys whose data cannot follow yet; rotate --root with CUSTOS_ROOT_KEY and
 * no previous root explains what to set and changes nothing. Run in process through `main`.
 */
function capture(): Io & { stdout: string[]; stderr: string[] } {
  const stdout: string[] = [];
  const stderr: string[] = [];
  return { stdout, stderr, out: (l) => void stdout.push(l), err: (l) => void stderr.push(l), progress: () => undefined, done: () => undefined };
}

interface Status {
  current: number;
  keks: { version: number; data_keys: number; current: boolean; age_days: number }[];
  service_keys: { name: string; version: number; current: boolean }[];
  data_keys: { subjects: number; versions: number };
  warnings: string[];
}

describe(`custos keys (${TEST_DIALECT})`, () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  const run = async (args: string[], extra: Record<string, string> = {}) => {
    const io = capture();
    const code = await main(args, io, { ...env, ...extra });
    return { code, stdout: io.stdout.join('\n'), stderr: io.stderr.join('\n') };
  };
  const status = async (extra: Record<string, string> = {}) => {
    const r = await run(['keys', 'status', '--json'], extra);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Status;
  };

  beforeAll(async () => {
    db = await newDatabase();
    env = childEnv(db, { CUSTOS_ROOT_KEY: rootKey(), CUSTOS_LOG_LEVEL: 'silent' });
    expect((await run(['migrate'])).code).toBe(0);
  });
  afterAll(async () => db.cleanup());

  it('status lists the KEK and every service key at version 1, with no warning on a new database', async () => {
    const s = await status();
    expect(s.keks).toHaveLength(1);
    expect(s.service_keys.map((k) => k.name).sort()).toEqual([...SERVICE_KEY_NAMES].sort());
    expect(s.warnings).toEqual([]);
  });

  it('rotate --cards adds card-vault and card-index versions; --resume adds none', async () => {
    const r = await run(['keys', 'rotate', '--cards']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/rotated: card keys; 0 cards re-sealed, 0 left/);
    const versions = (await status()).service_keys.filter((k) => k.name.startsWith('card-')).map((k) => `${k.name}:v${k.version}`);
    expect(versions.sort()).toEqual(['card-index:v1', 'card-index:v2', 'card-vault:v1', 'card-vault:v2']);
    expect((await run(['keys', 'rotate', '--cards', '--resume'])).code).toBe(0);
    expect((await status()).service_keys.filter((k) => k.name.startsWith('card-'))).toHaveLength(4);
  });

  it('status warns when the current KEK is older than the cryptoperiod', async () => {
    const s = await status({ CUSTOS_KEY_CRYPTOPERIOD_DAYS: '1' });
    expect(s.warnings).toEqual([]);
    // Backdate the KEK: created 400 days ago.
    const { openStore } = await import('../../src/store/database.ts');
    const store = await openStore(db.database);
    try {
      await store.db.updateTable('keks').set({ created_at: new Date(Date.now() - 400 * 86_400_000).toISOString() }).execute();
    } finally {
      await store.close();
    }
    const old = await status();
    expect(old.warnings.some((w) => /KEK v1 is 400 days old, past the cryptoperiod of 365 days/.test(w))).toBe(true);
  });

  it('retire destroys the KEK versions that wrap no data key, never the current one', async () => {
    expect((await run(['keys', 'rotate'])).code).toBe(0);
    expect((await run(['keys', 'rotate'])).code).toBe(0);
    const before = await status();
    expect(before.keks.map((k) => k.version)).toEqual([1, 2, 3]);
    expect(before.warnings.some((w) => w.includes('KEK v1 wraps no data key'))).toBe(true);
    const r = await run(['keys', 'retire']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toBe('destroyed KEK versions v1, v2');
    expect((await status()).keks.map((k) => k.version)).toEqual([3]);
    expect((await run(['keys', 'retire'])).stdout).toBe('no KEK version to retire');
  });

  it('rotate --key refuses the consent base key (what it protects names no version) and adds a version of the audit MAC key', async () => {
    const refused = await run(['keys', 'rotate', '--key', 'consent']);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toMatch(/consent cannot rotate yet/);
    const unknown = await run(['keys', 'rotate', '--key', 'nonsense']);
    expect(unknown.code).toBe(2);
    const ok = await run(['keys', 'rotate', '--key', 'audit-mac']);
    expect(ok.code, ok.stderr).toBe(0);
    const s = await status();
    expect(s.service_keys.filter((k) => k.name === 'audit-mac').map((k) => [k.version, k.current])).toEqual([
      [1, false],
      [2, true],
    ]);
    const verify = await run(['audit', 'verify']);
    expect(verify.code, verify.stdout + verify.stderr).toBe(0);
  });

  it('rotate --root with CUSTOS_ROOT_KEY and no previous root explains what to set and changes nothing', async () => {
    const before = await status();
    const r = await run(['keys', 'rotate', '--root']);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain('CUSTOS_ROOT_KEY_PREVIOUS');
    expect(await status()).toEqual(before);
  });
});
