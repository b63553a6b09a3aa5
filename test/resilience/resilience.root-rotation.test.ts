import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DIALECT, type TestDatabase } from '../support/store.ts';
import { CHILD_TIMEOUT, childEnv, killChildren, newDatabase, runCli, sleep, spawnCli } from './harness.ts';
import { rawDb } from './raw-db.ts';
import { localRuntime, SEED_ACTOR, seedCustomers, type SeededCustomer } from './seed.ts';

/**
 * Root rotation under a kill (ADR 0002). `custos keys rotate --root` on the embedded keyring writes
 * a new root into the keyring file (the old one kept as previous) and re-wraps every KEK and service
 * key in batches. Killed with SIGKILL half-way, run again, it finishes; every record reads, in a
 * fresh process and in a process that was running with the old root in memory (it reads the
 * keyring file again when it meets a key wrapped by a root it does not hold).
 */
const ROUNDS = 5;
const KEKS_PER_ROUND = 40;

describe(`root rotation killed half-way (${TEST_DIALECT})`, { timeout: CHILD_TIMEOUT }, () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  const seeded: SeededCustomer[] = [];
  let originalKid: string;

  beforeAll(async () => {
    db = await newDatabase();
    env = childEnv(db, { CUSTOS_LOG_LEVEL: 'warn' });
    const runtime = await localRuntime(env);
    try {
      // Data keys wrapped by many KEK versions, so that each KEK's re-wrap matters.
      for (let round = 0; round < ROUNDS; round++) {
        seeded.push(...(await seedCustomers(runtime, 4, `root${round}`, 1)));
        for (let i = 0; i < KEKS_PER_ROUND; i++) await runtime.keys.addKekVersion();
      }
      originalKid = runtime.ring.current().kid;
    } finally {
      await runtime.close();
    }
  }, CHILD_TIMEOUT);
  afterAll(async () => {
    await killChildren();
    await db.cleanup();
  });

  const readAll = async (runtime: Awaited<ReturnType<typeof localRuntime>>) => {
    const wrong: string[] = [];
    for (const s of seeded) {
      const view = await runtime.vault.readCustomer({ actor: SEED_ACTOR, purpose: 'account', requestId: 'after-root-rotation' }, s.id);
      if (view.email !== s.values.email || view.name !== s.values.name) wrong.push(s.id);
    }
    return wrong;
  };

  it('finishes when run again after a SIGKILL, and every record reads', async () => {
    const before = JSON.parse(readFileSync(join(db.dir, 'keyring.json'), 'utf8')) as { root_key: string };
    const running = await localRuntime(env); // a process that started with the old root
    try {
      expect(await readAll(running)).toEqual([]);
      const raw = await rawDb(db);
      let moved = 0;
      let left = 0;
      try {
        const { child, exited, output } = spawnCli(['keys', 'rotate', '--root', '--batch-size', '1'], env);
        const deadline = Date.now() + 60_000;
        for (;;) {
          const rows = await raw.query<{ root_kid: string | null }>('SELECT root_kid FROM keks');
          moved = rows.filter((r) => r.root_kid !== originalKid).length;
          left = rows.length - moved;
          if (moved >= 20) break;
          if (Date.now() > deadline || child.exitCode !== null) break;
          await sleep(2);
        }
        child.kill('SIGKILL');
        expect((await exited).signal, output()).toBe('SIGKILL');
      } finally {
        await raw.close();
      }
      expect(moved, 'some KEKs were re-wrapped before the kill').toBeGreaterThanOrEqual(20);
      expect(left, 'the kill came before the end').toBeGreaterThan(0);
      const mid = JSON.parse(readFileSync(join(db.dir, 'keyring.json'), 'utf8')) as { root_key: string; previous?: { root_key: string }[] };
      expect(mid.root_key).not.toBe(before.root_key);
      expect(mid.previous?.[0]?.root_key).toBe(before.root_key);

      const resumed = await runCli(['keys', 'rotate', '--root'], env);
      expect(resumed.code, resumed.stderr).toBe(0);
      const after = JSON.parse(readFileSync(join(db.dir, 'keyring.json'), 'utf8')) as { root_key: string; previous?: unknown };
      expect(after.root_key, 'the run again finished the same rotation').toBe(mid.root_key);
      expect(after.previous).toBeUndefined();

      const status = await runCli(['keys', 'status', '--json'], env);
      expect(status.code, status.stderr).toBe(0);
      const parsed = JSON.parse(status.stdout) as { root: { kid: string; pending_rewrap: number }; keks: { root_kid: string }[] };
      expect(parsed.root.pending_rewrap).toBe(0);
      expect(new Set(parsed.keks.map((k) => k.root_kid))).toEqual(new Set([parsed.root.kid]));

      expect(await readAll(running), 'the process started before the rotation').toEqual([]);
    } finally {
      await running.close();
    }
    const fresh = await localRuntime(env);
    try {
      expect(await readAll(fresh), 'a fresh process').toEqual([]);
    } finally {
      await fresh.close();
    }
  });
});
