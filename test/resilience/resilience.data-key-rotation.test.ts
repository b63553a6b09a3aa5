import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DIALECT, type TestDatabase } from '../support/store.ts';
import { CHILD_TIMEOUT, childEnv, killChildren, newDatabase, rootKey, runCli, sleep, spawnCli } from './harness.ts';
import { rawDb } from './raw-db.ts';
import { localRuntime, SEED_ACTOR, seedCustomers, type SeededCustomer } from './seed.ts';

/**
 * `custos keys rotate --data-keys`: every customer gets a new data key, every record is re-sealed
 * under it, and the superseded versions are destroyed. Killed with SIGKILL half-way, every record
 * still reads (both versions open); run again, it resumes and finishes. Afterwards a copy of a
 * customer's old key row, put back, opens nothing: the records are no longer sealed under it.
 */
const SUBJECTS = TEST_DIALECT === 'sqlite' ? 300 : 150;

describe(`data-key rotation (${TEST_DIALECT})`, { timeout: CHILD_TIMEOUT }, () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  let seeded: SeededCustomer[];
  let addressOf: Map<string, string>;

  const readAll = async () => {
    const runtime = await localRuntime(env);
    try {
      const ctx = { actor: SEED_ACTOR, purpose: 'account', requestId: 'rotation-check' };
      const wrong: string[] = [];
      for (const s of seeded) {
        const view = (await runtime.vault.readCustomer(ctx, s.id)) as { name?: string; email?: string; addresses?: { line1?: string }[] };
        if (view.name !== s.values.name || view.email !== s.values.email) wrong.push(s.id);
        const line1 = addressOf.get(s.id);
        if (line1 !== undefined && view.addresses?.[0]?.line1 !== line1) wrong.push(`${s.id}/address`);
      }
      return wrong;
    } finally {
      await runtime.close();
    }
  };
  const versions = async () => {
    const raw = await rawDb(db);
    try {
      return await raw.query<{ subject_id: string; dek_version: number; kek_version: number; wrapped: string; created_at: string }>(
        'SELECT subject_id, dek_version, kek_version, wrapped, created_at FROM subject_keys ORDER BY subject_id, dek_version',
      );
    } finally {
      await raw.close();
    }
  };

  beforeAll(async () => {
    db = await newDatabase();
    env = childEnv(db, { CUSTOS_ROOT_KEY: rootKey(), CUSTOS_LOG_LEVEL: 'warn' });
    const runtime = await localRuntime(env);
    try {
      seeded = await seedCustomers(runtime, SUBJECTS, 'rotate');
      addressOf = new Map();
      // Every tenth customer also has an address: a second record under the same data key.
      for (const s of seeded.filter((_, i) => i % 10 === 0)) {
        const line1 = `${s.id.slice(-6)} Rotation Street`;
        await runtime.vault.create({ actor: SEED_ACTOR, purpose: undefined, requestId: 'seed-address' }, 'addresses', s.id, {
          line1,
          city: 'Berlin',
          postal_code: '10115',
          country: 'DE',
        });
        addressOf.set(s.id, line1);
      }
    } finally {
      await runtime.close();
    }
  }, CHILD_TIMEOUT);
  afterAll(async () => {
    await killChildren();
    await db.cleanup();
  });

  it('killed with SIGKILL half-way, every record reads; run again, it finishes and destroys the old keys; an old key row put back opens nothing', async () => {
    const before = await versions();
    expect(before).toHaveLength(SUBJECTS);
    const oldRow = before[0]!;

    const { child, exited, output } = spawnCli(['keys', 'rotate', '--data-keys', '--batch-size', '1'], env);
    const deadline = Date.now() + 60_000;
    for (;;) {
      const rows = await versions();
      if (rows.length >= SUBJECTS + 20 || Date.now() > deadline || child.exitCode !== null) break;
      await sleep(5);
    }
    child.kill('SIGKILL');
    expect((await exited).signal, output()).toBe('SIGKILL');
    const half = await versions();
    expect(half.length).toBeGreaterThan(SUBJECTS);
    expect(await readAll()).toEqual([]);

    const again = await runCli(['keys', 'rotate', '--data-keys', '--batch-size', '50'], env);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stdout).toMatch(/\(resumed\)/);
    const after = await versions();
    expect(after).toHaveLength(SUBJECTS);
    expect(after.every((r) => Number(r.dek_version) === 2)).toBe(true);
    expect(await readAll()).toEqual([]);

    // The old key row restored from a backup: the records are sealed under version 2 only.
    const raw = await rawDb(db);
    try {
      await raw.query(`INSERT INTO subject_keys (subject_id, kek_version, dek_version, wrapped, created_at) VALUES ('${oldRow.subject_id}', ${oldRow.kek_version}, 1, '${oldRow.wrapped}', '${oldRow.created_at}')`);
      await raw.query(`DELETE FROM subject_keys WHERE subject_id = '${oldRow.subject_id}' AND dek_version = 2`);
    } finally {
      await raw.close();
    }
    const runtime = await localRuntime(env);
    try {
      const text = await runtime.vault
        .readCustomer({ actor: SEED_ACTOR, purpose: 'account', requestId: 'restored' }, oldRow.subject_id)
        .then((v) => JSON.stringify(v))
        .catch((e: unknown) => String((e as { code?: string }).code ?? e));
      const victim = seeded.find((s) => s.id === oldRow.subject_id)!;
      expect(text).not.toContain(victim.values.email);
      expect(text).not.toContain(victim.values.name);
    } finally {
      await runtime.close();
    }

    // One successful rotation is on record (the killed run wrote none).
    const audit = await rawDb(db);
    try {
      const rows = await audit.query<{ n: number | string }>("SELECT COUNT(*) AS n FROM audit_log WHERE action = 'keys.rotate' AND record_id = 'data-keys' AND outcome = 'success'");
      expect(Number(rows[0]!.n)).toBe(1);
    } finally {
      await audit.close();
    }
  });
});
