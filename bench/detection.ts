import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config/config.ts';
import { openRuntime, type Runtime } from '../src/runtime.ts';
import { prepareDatabase } from './databases.ts';
import type { DbKind } from './options.ts';

/**
 * Vault reads with detection on against detection off (issue target: on ≥ 0.9× off), on one
 * database: three runtimes over the same seeded data — detection off, on with in-process windows,
 * and on with windows in Redis — each read through `inject` with a number of reads in flight (so
 * the engine gets batches as under load), in alternating rounds; prints reads per second, CPU
 * time per read and the ratios. A ratio, never an assertion.
 *
 * `node bench/detection.ts [sqlite|postgres] [reads] [rounds]` alone, or `npm run bench -- --ops detection`.
 */
export interface DetectionBenchOptions {
  readonly kind: DbKind;
  readonly pgUrl: string;
  readonly redisUrl: string | undefined;
  /** Reads per round and side. */
  readonly reads: number;
  readonly rounds: number;
  readonly inFlight: number;
  readonly seed: number;
}

export interface Side {
  readonly name: string;
  readonly perSecond: number;
  readonly cpuUsPerRead: number;
}

export interface DetectionBenchResult {
  readonly kind: DbKind;
  readonly off: Side;
  readonly on: Side;
  readonly redis: Side | undefined;
}

const log = (line: string) => process.stderr.write(`bench: ${line}\n`);
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;

export async function benchDetection(o: DetectionBenchOptions): Promise<DetectionBenchResult> {
  const db = await prepareDatabase(o.kind, o.pgUrl);
  const opened: { runtime: Runtime; app: FastifyInstance }[] = [];
  try {
    const base = {
      ...db.protectedEnv,
      CUSTOS_ROOT_KEY: randomBytes(32).toString('base64'),
      CUSTOS_PLAIN_HTTP: 'true',
      CUSTOS_TRUST_PROXY: '127.0.0.1',
      CUSTOS_RATE_LIMIT: '100000000',
      CUSTOS_LOG_LEVEL: 'silent',
    };
    const open = async (extra: Record<string, string>) => {
      const runtime = await openRuntime(loadConfig({ ...base, ...extra }));
      const app = await buildApp(runtime);
      await app.ready();
      opened.push({ runtime, app });
      return { runtime, app };
    };
    const off = await open({ CUSTOS_DETECTION: 'false' });
    const auth = `Bearer ${(await off.runtime.apiKeys.create({ name: 'bench', purposes: ['account', 'support'] })).key.reveal()}`;
    log(`${db.label}: seeding ${o.seed} customers`);
    const ids: string[] = [];
    for (let i = 0; i < o.seed; i++) {
      const res = await off.app.inject({ method: 'POST', url: '/v1/customers', headers: { authorization: auth }, payload: { name: 'Bench Reader', email: `bench.${i}.${randomBytes(3).toString('hex')}@example.org` } });
      ids.push(res.json<{ id: string }>().id);
    }
    await db.analyze();
    const sides: { name: string; app: FastifyInstance; settle: () => Promise<void> }[] = [
      { name: 'detection off', app: off.app, settle: async () => undefined },
    ];
    const on = await open({});
    sides.push({ name: 'detection on', app: on.app, settle: () => on.runtime.detection.settle() });
    if (o.redisUrl !== undefined) {
      const shared = await open({ REDIS_URL: o.redisUrl });
      sides.push({ name: 'detection on, Redis', app: shared.app, settle: () => shared.runtime.detection.settle() });
    }

    let next = 0;
    async function round(app: FastifyInstance, settle: () => Promise<void>): Promise<{ perSecond: number; cpuUs: number }> {
      const cpu = process.cpuUsage();
      const start = process.hrtime.bigint();
      let done = 0;
      const worker = async () => {
        while (done < o.reads) {
          done += 1;
          const id = ids[next++ % ids.length]!;
          const res = await app.inject({ method: 'GET', url: `/v1/customers/${id}`, headers: { authorization: auth, 'custos-purpose': 'support' } });
          if (res.statusCode !== 200) throw new Error(`read answered ${res.statusCode}: ${res.body.slice(0, 200)}`);
        }
      };
      await Promise.all(Array.from({ length: o.inFlight }, worker));
      // The engine's work on these reads belongs to this side's cost.
      await settle();
      const seconds = Number(process.hrtime.bigint() - start) / 1e9;
      const used = process.cpuUsage(cpu);
      return { perSecond: o.reads / seconds, cpuUs: (used.user + used.system) / o.reads };
    }

    const figures = new Map(sides.map((s) => [s.name, { rates: [] as number[], cpu: [] as number[] }]));
    for (const s of sides) await round(s.app, s.settle); // warm-up
    for (let i = 0; i < o.rounds; i++) {
      const order = i % 2 === 0 ? sides : [...sides].reverse();
      for (const s of order) {
        const r = await round(s.app, s.settle);
        figures.get(s.name)!.rates.push(r.perSecond);
        figures.get(s.name)!.cpu.push(r.cpuUs);
        log(`  ${s.name.padEnd(20)} ${String(Math.round(r.perSecond)).padStart(6)} reads/s  cpu ${Math.round(r.cpuUs)} µs/read`);
      }
    }
    const side = (name: string): Side => ({ name, perSecond: median(figures.get(name)!.rates), cpuUsPerRead: median(figures.get(name)!.cpu) });
    return { kind: o.kind, off: side('detection off'), on: side('detection on'), redis: o.redisUrl === undefined ? undefined : side('detection on, Redis') };
  } finally {
    for (const { app, runtime } of opened.reverse()) {
      await app.close();
      await runtime.close();
    }
    await db.cleanup();
  }
}

/** The results as a Markdown table (throughput ratio: on ÷ off; target ≥ 0.9). */
export function detectionMarkdown(results: readonly DetectionBenchResult[]): string {
  const lines = ['| database | detection | reads/s | CPU µs/read | on ÷ off (target ≥ 0.9) |', '|---|---|--:|--:|--:|'];
  for (const r of results)
    for (const s of [r.off, r.on, r.redis].filter((x): x is Side => x !== undefined))
      lines.push(`| ${r.kind} | ${s.name} | ${Math.round(s.perSecond)} | ${Math.round(s.cpuUsPerRead)} | ${s === r.off ? '—' : (s.perSecond / r.off.perSecond).toFixed(2)} |`);
  return lines.join('\n');
}

if (process.argv[1]?.endsWith('bench/detection.ts') === true) {
  const kind: DbKind = process.argv[2] === 'postgres' ? 'postgres' : 'sqlite';
  const result = await benchDetection({
    kind,
    pgUrl: process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test',
    redisUrl: process.env.REDIS_URL ?? 'redis://127.0.0.1:6379',
    reads: Number(process.argv[3] ?? 2000),
    rounds: Number(process.argv[4] ?? 3),
    inFlight: 16,
    seed: 500,
  });
  process.stdout.write(`${detectionMarkdown([result])}\n`);
}
