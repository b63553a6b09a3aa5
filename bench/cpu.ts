import { randomBytes } from 'node:crypto';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import pg from 'pg';
import type { FastifyInstance, InjectOptions } from 'fastify';
import { prepareDatabase } from './databases.ts';
import { openInProcess } from './in-process-pair.ts';
import { formatSummary, summarise } from './profile.ts';
import { customerBody } from './workload.ts';

/**
 * `node bench/cpu.ts [sqlite|postgres] [--requests N] [--rounds N] [--ops read,lookup,create] [--profile]`:
 * CPU time per request of the protected app and of its twin, each driven in this process through
 * `inject` (no sockets, no load generator), 32 requests in flight, in alternating rounds. CPU is
 * this process's user + system time over all its threads (the SQLite audit thread included; the
 * main thread's share beside it); on PostgreSQL "+ … db" is the CPU of the database backends that
 * serve the protected app (found by application_name; the twin's are not counted). A busy machine inflates CPU time far less than
 * it does throughput, so this is the measure to compare two versions of the code with while other
 * work runs; the ratio column (twin CPU ÷ protected CPU, the database's included) is what the
 * throughput ratio would be if both were bound by CPU alone. `--profile` samples the protected side's main
 * thread during its last round and charges the samples to Custos's areas (bench/profile.ts).
 */
const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    requests: { type: 'string', default: '2000' },
    rounds: { type: 'string', default: '5' },
    ops: { type: 'string', default: 'read,lookup,create' },
    profile: { type: 'boolean', default: false },
    seed: { type: 'string', default: '500' },
  },
});
const kind = (positionals[0] ?? 'sqlite') as 'sqlite' | 'postgres';
const N = Number(values.requests);
const ROUNDS = Number(values.rounds);
const SEED = Number(values.seed);
const ops = values.ops.split(',') as ('read' | 'lookup' | 'create')[];
const IN_FLIGHT = 32;
const out = (s: string) => process.stdout.write(`${s}\n`);

const pgUrl = process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
const db = await prepareDatabase(kind, pgUrl);
let tag = 0;

/**
 * PostgreSQL: the CPU time (µs) of the database backends serving one side's connections, found by
 * the application_name they carry, so that other clients of the same server (other test runs, the
 * other side) are not counted. Backends are processes; /proc gives their user + system time in ticks.
 */
const appName = `custos-cpu-${randomBytes(4).toString('hex')}`;
const observer = kind === 'postgres' ? new pg.Client({ connectionString: pgUrl }) : undefined;
await observer?.connect();
const TICK_US = 10_000;
async function dbCpu(name: string): Promise<number> {
  if (observer === undefined) return 0;
  const { rows } = await observer.query<{ pid: number }>('SELECT pid FROM pg_stat_activity WHERE application_name = $1', [name]);
  let ticks = 0;
  for (const { pid } of rows) {
    try {
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
      ticks += Number(fields[11]) + Number(fields[12]);
    } catch {
      // The backend ended between the query and the read.
    }
  }
  return ticks * TICK_US;
}

async function drive(app: FastifyInstance, n: number, request: (i: number) => InjectOptions, name = ''): Promise<{ cpu: number; main: number; db: number; wall: number }> {
  const db0 = await dbCpu(name);
  const start = performance.now();
  const cpu = process.cpuUsage();
  const main = process.threadCpuUsage();
  let next = 0;
  let failed = 0;
  await Promise.all(
    Array.from({ length: IN_FLIGHT }, async () => {
      while (next < n) {
        const res = await app.inject(request(next++));
        if (res.statusCode >= 300) failed++;
      }
    }),
  );
  const used = process.cpuUsage(cpu);
  const mainUsed = process.threadCpuUsage(main);
  const wall = ((performance.now() - start) * 1000) / n;
  const dbUsed = (await dbCpu(name)) - db0;
  if (failed > 0) throw new Error(`${failed} requests failed`);
  return { cpu: (used.user + used.system) / n, main: (mainUsed.user + mainUsed.system) / n, db: dbUsed / n, wall };
}

/** Waits until this process's threads are quiet (the audit thread's commits and chaining), so a round pays only its own work. */
async function settle(): Promise<void> {
  for (let i = 0; i < 50; i++) {
    const before = process.cpuUsage();
    await new Promise((resolve) => setTimeout(resolve, 100));
    const used = process.cpuUsage(before);
    if (used.user + used.system < 10_000) return;
  }
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

try {
  const { runtime, app, twin, close } = await openInProcess(db, { protected: `${appName}-p`, twin: `${appName}-t` });
  const { key } = await runtime.apiKeys.create({ name: 'cpu', purposes: ['support', 'account'] });
  const headers = { authorization: `Bearer ${key.reveal()}`, 'content-type': 'application/json' };

  const seeded = new Map<FastifyInstance, string[]>([
    [app, []],
    [twin, []],
  ]);
  for (const [a, ids] of seeded)
    for (let i = 0; i < SEED; i++) {
      const r = await a.inject({ method: 'POST', url: '/v1/customers', headers: { ...headers, 'custos-purpose': 'account' }, payload: customerBody('seed', i) });
      if (r.statusCode !== 201) throw new Error(`seeding answered ${r.statusCode}: ${r.body}`);
      ids.push(r.json<{ id: string }>().id);
    }
  await db.analyze();

  const requestOf = (op: (typeof ops)[number], a: FastifyInstance) => {
    const ids = seeded.get(a)!;
    const read = { ...headers, 'custos-purpose': 'support' };
    if (op === 'read') return (i: number) => ({ method: 'GET' as const, url: `/v1/customers/${ids[(i * 7919) % ids.length]!}`, headers: read });
    if (op === 'lookup') return (i: number) => ({ method: 'GET' as const, url: `/v1/customers?email=seed-${(i * 7919) % SEED}%40shop.example`, headers: read });
    const t = `c${tag++}`;
    return (i: number) => ({ method: 'POST' as const, url: '/v1/customers', headers: { ...headers, 'custos-purpose': 'account' }, payload: customerBody(t, i) });
  };

  out(`# CPU per request in one process (inject, ${IN_FLIGHT} in flight), ${kind}, ${ROUNDS} rounds × ${N} requests; load average ${loadavg()[0]!.toFixed(1)}`);
  const withDb = kind === 'postgres';
  out(`${'op'.padEnd(8)} ${'protected µs'.padStart(13)} ${'(main thread)'.padStart(14)} ${withDb ? `${'+ db µs'.padStart(8)} ` : ''}${'twin µs'.padStart(9)} ${withDb ? `${'+ db µs'.padStart(8)} ` : ''}${'ratio'.padStart(6)}   rounds (protected/twin${withDb ? ', with db' : ''})`);
  const profiles: string[] = [];
  const nameOf = (a: FastifyInstance) => (a === app ? `${appName}-p` : `${appName}-t`);
  for (const op of ops) {
    // Warm-up, as long as a round: both apps compiled by the JIT, statements prepared, data keys cached.
    await drive(app, N, requestOf(op, app));
    await drive(twin, N, requestOf(op, twin));
    const rounds = new Map<FastifyInstance, { cpu: number; main: number; db: number }[]>([
      [app, []],
      [twin, []],
    ]);
    for (let r = 0; r < ROUNDS; r++) {
      const order = r % 2 === 0 ? [app, twin] : [twin, app];
      for (const a of order) {
        const profiling = values.profile && a === app && r === ROUNDS - 1 ? new Session() : undefined;
        if (profiling !== undefined) {
          profiling.connect();
          await profiling.post('Profiler.enable');
          await profiling.post('Profiler.setSamplingInterval', { interval: 200 });
          await profiling.post('Profiler.start');
        }
        await settle();
        rounds.get(a)!.push(await drive(a, N, requestOf(op, a), nameOf(a)));
        if (profiling !== undefined) {
          const { profile } = await profiling.post('Profiler.stop');
          profiling.disconnect();
          const file = join(mkdtempSync(join(tmpdir(), 'custos-cpu-')), `${op}.cpuprofile`);
          writeFileSync(file, JSON.stringify(profile));
          profiles.push(formatSummary(`${kind} ${op}, protected, main thread (${file})`, summarise(file), N));
        }
      }
    }
    const p = rounds.get(app)!;
    const t = rounds.get(twin)!;
    const of = (xs: { cpu: number; main: number; db: number }[], k: 'cpu' | 'main' | 'db') => median(xs.map((x) => x[k]));
    const total = (xs: { cpu: number; db: number }[]) => median(xs.map((x) => x.cpu + x.db));
    const cols = [
      of(p, 'cpu').toFixed(0).padStart(13),
      of(p, 'main').toFixed(0).padStart(14),
      ...(withDb ? [of(p, 'db').toFixed(0).padStart(8)] : []),
      of(t, 'cpu').toFixed(0).padStart(9),
      ...(withDb ? [of(t, 'db').toFixed(0).padStart(8)] : []),
      (total(t) / total(p)).toFixed(2).padStart(6),
    ];
    out(`${op.padEnd(8)} ${cols.join(' ')}   ${p.map((x, i) => `${(x.cpu + x.db).toFixed(0)}/${(t[i]!.cpu + t[i]!.db).toFixed(0)}`).join('  ')}`);
  }
  for (const s of profiles) out(`\n${s}`);
  await close();
} finally {
  await observer?.end();
  await db.cleanup();
}
