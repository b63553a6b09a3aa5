import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DIALECT, type TestDatabase } from '../support/store.ts';
import { apiClient, idOf } from './api-client.ts';
import { CHILD_TIMEOUT, childEnv, killChildren, newDatabase, rootKey, runCli, sleep, spawnCli, spawnServer, startServer } from './harness.ts';
import { rawDb } from './raw-db.ts';
import { localRuntime, SEED_ACTOR, seedCustomers, type SeededCustomer } from './seed.ts';

/**
 * Key rotation (PCI DSS 4.0.1 3.6.1, 3.7.4: cryptoperiods, key changes without downtime).
 * `custos keys rotate` adds a KEK version and re-wraps every data key in batches while the API
 * keeps serving; a rotation killed half-way finishes when run again; and a server given another
 * root key than the one the data was written with refuses to start instead of serving garbage.
 */
const SUBJECTS = TEST_DIALECT === 'sqlite' ? 1000 : 500;
const CLIENTS = 8;

interface Status {
  current: number;
  versions: { version: number; subjects: number }[];
}

describe(`key rotation (${TEST_DIALECT})`, { timeout: CHILD_TIMEOUT }, () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  let key: string;
  let seeded: SeededCustomer[];
  const createdDuringRotation: { id: string; name: string }[] = [];

  const status = async (): Promise<Status> => {
    const r = await runCli(['keys', 'status', '--json'], env);
    expect(r.code, r.stderr).toBe(0);
    return JSON.parse(r.stdout) as Status;
  };
  const subjectsAt = (s: Status) => Object.fromEntries(s.versions.map((v) => [v.version, v.subjects]));

  beforeAll(async () => {
    db = await newDatabase();
    env = childEnv(db, { CUSTOS_ROOT_KEY: rootKey(), CUSTOS_LOG_LEVEL: 'warn' });
    const runtime = await localRuntime(env);
    try {
      seeded = await seedCustomers(runtime, SUBJECTS, 'rot');
      key = (await runtime.apiKeys.create({ name: 'rotation', purposes: ['account'] })).key.reveal();
    } finally {
      await runtime.close();
    }
  }, CHILD_TIMEOUT);
  afterAll(async () => {
    await killChildren();
    await db.cleanup();
  });

  it('re-wraps every data key under a new KEK while reads and writes go on, with no failed request', async () => {
    const before = await status();
    expect(before.current).toBe(1);
    expect(subjectsAt(before)).toEqual({ 1: SUBJECTS });

    const server = await startServer(env);
    const api = apiClient(server.url, key);
    const failures: string[] = [];
    let rotating = true;
    let completed = 0;
    // Seeded customers are read in turn, so most reads unwrap their data key afresh (no cache).
    let nextRead = 0;
    // Small batches: the rotation lasts long enough for the load to overlap it even on a busy
    // machine. On SQLite it gives way between batches; without that, the server's requests (each
    // read writes its audit entry) waited for the write lock until the rotation had finished.
    const rotation = runCli(['keys', 'rotate', '--batch-size', '5'], env).finally(() => (rotating = false));
    // Watches the table: how many requests completed while keys sat under both versions at once.
    const raw = await rawDb(db);
    let mixed: { first: number; last: number } | undefined;
    const watcher = (async () => {
      while (rotating) {
        const rows = await raw.query<{ kek_version: number; n: number | string }>('SELECT kek_version, COUNT(*) AS n FROM subject_keys GROUP BY kek_version');
        if (rows.length > 1) mixed = { first: mixed?.first ?? completed, last: completed };
        await sleep(10);
      }
    })();

    const client = async (c: number) => {
      for (let n = 0; rotating; n++) {
        const s = seeded[nextRead++ % seeded.length]!;
        const read = await api.get(`/v1/customers/${s.id}`, 'account');
        if (read.status !== 200) failures.push(`read ${s.id}: ${read.status} ${read.text}`);
        else if ((read.body as { name?: string }).name !== s.values.name) failures.push(`read ${s.id}: wrong name`);
        if (n % 3 === 0) {
          const name = `Rotation Writer ${c}-${n}`;
          const created = await api.post('/v1/customers', { name, email: `rw-${c}-${n}@rotation.example` });
          if (created.status !== 201) failures.push(`create: ${created.status} ${created.text}`);
          else createdDuringRotation.push({ id: idOf(created), name });
          const patched = await api.patch(`/v1/customers/${s.id}`, { locale: 'fr-FR' });
          if (patched.status !== 200) failures.push(`patch ${s.id}: ${patched.status} ${patched.text}`);
        }
        completed++;
      }
    };
    await Promise.all(Array.from({ length: CLIENTS }, (_, c) => client(c)));
    const rotated = await rotation;
    await watcher;
    await raw.close();
    expect(rotated.stderr).toContain('added KEK v2');
    expect(rotated.stdout).toMatch(/^rotated: KEK v2 wraps every data key/);
    expect(rotated.code).toBe(0);
    expect(failures, `server log:\n${server.output().slice(-4000)}`).toEqual([]);
    // The load really overlapped the re-wrapping and went on during it: requests kept completing
    // while old and new versions both wrapped data keys (a rotation that did not give way let
    // 0 to 8 through on SQLite; giving way, about a thousand).
    expect(mixed, 'the watcher saw the rotation half-way').toBeDefined();
    expect(mixed!.last - mixed!.first, 'requests completed during the rotation').toBeGreaterThanOrEqual(50);

    // Nothing left under the old version; the customers written meanwhile are under v2 as well.
    const after = await status();
    expect(after.current).toBe(2);
    expect(subjectsAt(after)).toEqual({ 1: 0, 2: SUBJECTS + createdDuringRotation.length });

    // Still readable after the rotation, including what was written during it.
    for (const c of createdDuringRotation.slice(0, 50)) {
      const read = await api.get(`/v1/customers/${c.id}`, 'account');
      expect(read.status).toBe(200);
      expect((read.body as { name?: string }).name).toBe(c.name);
    }
    expect((await server.stop('SIGTERM')).code).toBe(0);
  });

  it('finishes a rotation that was killed half-way when it is run again', async () => {
    const total = SUBJECTS + createdDuringRotation.length;
    const raw = await rawDb(db);
    let counts: Record<number, number> = {};
    try {
      const { child, exited, output } = spawnCli(['keys', 'rotate', '--batch-size', '1'], env);
      // Kill it once some batches have moved keys to v3 and some keys are still under v2.
      const deadline = Date.now() + 60_000;
      for (;;) {
        const rows = await raw.query<{ kek_version: number; n: number | string }>('SELECT kek_version, COUNT(*) AS n FROM subject_keys GROUP BY kek_version');
        counts = Object.fromEntries(rows.map((r) => [Number(r.kek_version), Number(r.n)]));
        if ((counts[3] ?? 0) >= 20) break;
        if (Date.now() > deadline || child.exitCode !== null) break;
        await sleep(5);
      }
      child.kill('SIGKILL');
      expect((await exited).signal, output()).toBe('SIGKILL');
    } finally {
      await raw.close();
    }
    const interrupted = await status();
    expect(interrupted.current).toBe(3);
    const mid = subjectsAt(interrupted);
    expect(mid[3], 'some batches moved keys before the kill').toBeGreaterThanOrEqual(20);
    expect(mid[2], 'the kill came before the end').toBeGreaterThan(0);
    expect(mid[1]! + mid[2]! + mid[3]!).toBe(total);

    const resumed = await runCli(['keys', 'rotate'], env);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toContain('resuming rotation to KEK v3');
    const done = await status();
    expect(done.current).toBe(3);
    expect(subjectsAt(done)).toEqual({ 1: 0, 2: 0, 3: total });

    // Every record still opens, read through a fresh runtime (no key cached anywhere).
    const runtime = await localRuntime(env);
    try {
      const wrong: string[] = [];
      let next = 0;
      await Promise.all(
        Array.from({ length: 16 }, async () => {
          while (next < seeded.length) {
            const s = seeded[next++]!;
            const view = await runtime.vault.readCustomer({ actor: SEED_ACTOR, purpose: 'account', requestId: 'after-rotation' }, s.id);
            if (view.name !== s.values.name || view.email !== s.values.email || view.date_of_birth !== s.values.date_of_birth) wrong.push(s.id);
          }
        }),
      );
      expect(wrong).toEqual([]);
    } finally {
      await runtime.close();
    }
  });

  it('refuses to start with another root key than the data was written with', async () => {
    const wrongEnv = { ...env, CUSTOS_ROOT_KEY: rootKey() };
    const server = await spawnServer(wrongEnv);
    const exit = await Promise.race([server.exited, sleep(30_000).then(() => undefined)]);
    expect(exit, 'the server must exit, not keep running').toBeDefined();
    expect(exit?.code).not.toBe(0);
    expect(exit?.code).not.toBeNull();
    expect(server.output()).toMatch(/root key/i);
    // Nothing was served meanwhile.
    await expect(fetch(`${server.url}/health`)).rejects.toThrow();

    const cli = await runCli(['keys', 'status'], wrongEnv);
    expect(cli.code).not.toBe(0);
    expect(cli.stdout).toBe('');
    expect(cli.stderr).toMatch(/root key/i);
  });
});
