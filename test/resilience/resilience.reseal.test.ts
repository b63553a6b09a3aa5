import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DIALECT, type TestDatabase } from '../support/store.ts';
import { toPerFieldFormat } from '../vault/legacy.ts';
import { apiClient } from './api-client.ts';
import { CHILD_TIMEOUT, childEnv, createKey, killChildren, newDatabase, rootKey, runCli, sleep, spawnCli, startServer } from './harness.ts';
import { rawDb } from './raw-db.ts';
import { localRuntime, seedCustomers, type SeededCustomer } from './seed.ts';

/**
 * The conversion of a database made before envelopes (docs/adr/0003-record-envelope.md):
 * `custos keys reseal` seals every per-field record as one envelope, a record at a time, and is
 * not part of `custos migrate`. Killed with SIGKILL half-way, records in both formats read; run
 * again, it finishes, and every record reads in a fresh process. After it, a per-field record put
 * back into the table is refused.
 */
const SUBJECTS = TEST_DIALECT === 'sqlite' ? 600 : 300;
const ENVELOPES = `SELECT COUNT(*) AS n FROM records WHERE data LIKE '{"s":%'`;

describe(`re-seal job (${TEST_DIALECT})`, { timeout: CHILD_TIMEOUT }, () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  let seeded: SeededCustomer[];

  const readAll = async () => {
    const runtime = await localRuntime(env);
    try {
      const ctx = { actor: { ref: 'system:test-read', kind: 'system' as const, purposes: ['account'] }, purpose: 'account', requestId: 'reseal-check' };
      const wrong: string[] = [];
      for (const s of seeded) {
        const view = await runtime.vault.readCustomer(ctx, s.id);
        if (view.name !== s.values.name || view.email !== s.values.email) wrong.push(s.id);
      }
      return wrong;
    } finally {
      await runtime.close();
    }
  };

  beforeAll(async () => {
    db = await newDatabase();
    env = childEnv(db, { CUSTOS_ROOT_KEY: rootKey(), CUSTOS_LOG_LEVEL: 'warn' });
    const runtime = await localRuntime(env);
    try {
      seeded = await seedCustomers(runtime, SUBJECTS, 'reseal');
      expect(await toPerFieldFormat(runtime)).toBe(SUBJECTS);
    } finally {
      await runtime.close();
    }
  }, CHILD_TIMEOUT);
  afterAll(async () => {
    await killChildren();
    await db.cleanup();
  });

  it('custos migrate leaves per-field records as they are, and they read', async () => {
    const migrated = await runCli(['migrate'], env);
    expect(migrated.code, migrated.stderr).toBe(0);
    const raw = await rawDb(db);
    try {
      expect(Number((await raw.query<{ n: number | string }>(ENVELOPES))[0]!.n)).toBe(0);
    } finally {
      await raw.close();
    }
    expect(await readAll()).toEqual([]);
  });

  it('finishes a re-seal killed with SIGKILL half-way when run again; every record reads', async () => {
    const raw = await rawDb(db);
    try {
      const { child, exited, output } = spawnCli(['keys', 'reseal', '--batch-size', '1'], env);
      const deadline = Date.now() + 60_000;
      let done = 0;
      for (;;) {
        done = Number((await raw.query<{ n: number | string }>(ENVELOPES))[0]!.n);
        if (done >= 20 || Date.now() > deadline || child.exitCode !== null) break;
        await sleep(5);
      }
      child.kill('SIGKILL');
      expect((await exited).signal, output()).toBe('SIGKILL');
      done = Number((await raw.query<{ n: number | string }>(ENVELOPES))[0]!.n);
      expect(done).toBeGreaterThan(0);
      expect(done).toBeLessThan(SUBJECTS);
      // Half-way: both formats read.
      expect(await readAll()).toEqual([]);

      const again = await runCli(['keys', 'reseal', '--batch-size', '50'], env);
      expect(again.code, again.stderr).toBe(0);
      expect(again.stdout).toMatch(/every record is an envelope/);
      expect(Number((await raw.query<{ n: number | string }>(ENVELOPES))[0]!.n)).toBe(SUBJECTS);
      expect((await raw.query<{ value: number }>("SELECT value FROM vault_state WHERE name = 'resealed'"))[0]?.value).toBe(1);
    } finally {
      await raw.close();
    }
    expect(await readAll()).toEqual([]);
    // Run once more: nothing left to do.
    const idle = await runCli(['keys', 'reseal'], env);
    expect(idle.stdout).toMatch(/^re-sealed 0 records/);
  });

  it('after the re-seal, a per-field record written back into the table is refused (no downgrade)', async () => {
    const runtime = await localRuntime(env);
    try {
      await toPerFieldFormat(runtime, [seeded[0]!.id]);
    } finally {
      await runtime.close();
    }
    // toPerFieldFormat cleared the mark: put it back as the finished job left it.
    const raw = await rawDb(db);
    await raw.query("INSERT INTO vault_state (name, value) VALUES ('resealed', 1)");
    await raw.close();
    const key = await createKey(env, ['account']);
    const server = await startServer(env);
    const api = apiClient(server.url, key);
    const read = await api.get(`/v1/customers/${seeded[0]!.id}`, 'account');
    expect(read.status, read.text).toBe(500);
    expect(read.text).toContain('VAULT_INTEGRITY_FAILURE');
    expect(read.text).not.toContain(seeded[0]!.values.name);
    const other = await api.get(`/v1/customers/${seeded[1]!.id}`, 'account');
    expect(other.status).toBe(200);
    await server.stop('SIGTERM');
  });
});
