import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DIALECT, type TestDatabase } from '../support/store.ts';
import { CHILD_TIMEOUT, childEnv, killChildren, newDatabase, rootKey, runCli, sleep, spawnCli } from './harness.ts';
import { rawDb } from './raw-db.ts';
import { localRuntime, SEED_ACTOR, seedCustomers, type SeededCustomer } from './seed.ts';

/**
 * `custos keys rotate --key blind-index`: killed with SIGKILL half-way through the rebuild, every
 * lookup still works (both versions are in force); run again, it resumes and finishes, every
 * lookup works, and only the new version and its index rows are left.
 */
const SUBJECTS = TEST_DIALECT === 'sqlite' ? 200 : 120;
const ACCOUNTS = 10;

describe(`blind-index rotation killed half-way (${TEST_DIALECT})`, { timeout: CHILD_TIMEOUT }, () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  let seeded: SeededCustomer[];

  /** Each customer's lookup by email, and each account's by email: the ones that do not answer right. */
  const lookAll = async () => {
    const runtime = await localRuntime(env);
    try {
      const ctx = { actor: SEED_ACTOR, purpose: 'account', requestId: 'rotation-check' };
      const wrong: string[] = [];
      for (const s of seeded) {
        const found = await runtime.vault.findCustomers(ctx, { email: s.values.email });
        if (found.length !== 1 || found[0]!.id !== s.id) wrong.push(s.id);
      }
      for (let i = 0; i < ACCOUNTS; i++) {
        if ((await runtime.identity.accounts.findByEmail('customer', `account-${i}@bix.example`)) === undefined) wrong.push(`account ${i}`);
      }
      return wrong;
    } finally {
      await runtime.close();
    }
  };
  const count = async (where: string) => {
    const raw = await rawDb(db);
    try {
      return Number((await raw.query<{ n: number | string }>(`SELECT COUNT(*) AS n FROM ${where}`))[0]!.n);
    } finally {
      await raw.close();
    }
  };

  beforeAll(async () => {
    db = await newDatabase();
    env = childEnv(db, { CUSTOS_ROOT_KEY: rootKey(), CUSTOS_LOG_LEVEL: 'warn' });
    const runtime = await localRuntime(env);
    try {
      seeded = await seedCustomers(runtime, SUBJECTS, 'bix');
      for (let i = 0; i < ACCOUNTS; i++) await runtime.identity.accounts.create({ realm: 'customer', email: `account-${i}@bix.example` });
    } finally {
      await runtime.close();
    }
  }, CHILD_TIMEOUT);
  afterAll(async () => {
    await killChildren();
    await db.cleanup();
  });

  it('killed with SIGKILL during the rebuild, every lookup works; run again, it finishes, every lookup works and the old version is gone', async () => {
    expect(await count("blind_indexes WHERE key_version = 1")).toBe(SUBJECTS);

    const { child, exited, output } = spawnCli(['keys', 'rotate', '--key', 'blind-index', '--batch-size', '1'], env);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const rebuilt = await count('blind_indexes WHERE key_version = 2').catch(() => 0);
      if (rebuilt >= 20 || Date.now() > deadline || child.exitCode !== null) break;
      await sleep(5);
    }
    child.kill('SIGKILL');
    expect((await exited).signal, output()).toBe('SIGKILL');
    const half = await count('blind_indexes WHERE key_version = 2');
    expect(half).toBeGreaterThan(0);
    expect(half).toBeLessThan(SUBJECTS);
    expect(await lookAll()).toEqual([]);

    const again = await runCli(['keys', 'rotate', '--key', 'blind-index', '--batch-size', '50'], env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/blind-index v2 \(resumed\)/);
    expect(await count('blind_indexes WHERE key_version <> 2')).toBe(0);
    expect(await count('blind_indexes WHERE key_version = 2')).toBe(SUBJECTS);
    expect(await count("service_keys WHERE name = 'blind-index'")).toBe(1);
    expect(await count("service_keys WHERE name = 'blind-index' AND version = 2")).toBe(1);
    expect(await count("key_state WHERE name = 'blind-index-rebuild'")).toBe(0);
    expect(await count('identity_accounts WHERE email_index_next IS NOT NULL')).toBe(0);
    expect(await lookAll()).toEqual([]);

    // One successful rotation is on record (the killed run wrote none).
    expect(await count("audit_log WHERE action = 'keys.rotate' AND record_id = 'blind-index:v2' AND outcome = 'success'")).toBe(1);
  });
});
