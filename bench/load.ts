import autocannon, { type RequestSpec, type Result } from 'autocannon';
import { cpuTicks, cpuTicksByName, type Child } from './children.ts';
import type { Op } from './options.ts';
import type { Target } from './servers.ts';
import { requestFor, type Seeded } from './workload.ts';

/**
 * One bounded load with autocannon, in this process: a warm-up (not measured), then the
 * measured run. Requests go only to the child's 127.0.0.1 address.
 */
export interface Measurement {
  readonly rps: number;
  readonly p50: number;
  readonly p99: number;
  readonly total: number;
  readonly non2xx: number;
  readonly errors: number;
  /** Responses per status code, e.g. { '200': 5120 }. */
  readonly statuses: Readonly<Record<string, number>>;
  /** Server CPU time (user + system) per request during the measured run, in ms; NaN if unknown. */
  readonly cpuMsPerRequest: number;
  /**
   * CPU time of the PostgreSQL server's processes per request during the measured run, in ms
   * (NaN on SQLite, or off Linux): the database work a request causes outside the server process.
   */
  readonly dbCpuMsPerRequest: number;
  /** Monotonic clock (µs) at the start and end of the measured run, to cut a CPU profile. */
  readonly window: readonly [number, number];
}

export interface LoadSettings {
  readonly duration: number;
  readonly warmup: number;
  readonly connections: number;
}

let loads = 0;

async function fire(child: Child, request: RequestSpec, connections: number, duration: number): Promise<Result> {
  return autocannon({ url: child.url, connections, duration, timeout: 30, requests: [request] });
}

const nowMicros = () => Number(process.hrtime.bigint() / 1000n);

export async function measure(target: Target, op: Op, seeded: Seeded, s: LoadSettings & { postgres: boolean }): Promise<Measurement> {
  return measureLoad(target.child, () => {
    loads += 1;
    return requestFor(op, target, seeded, `${op}-${target.side}-${loads}-${Date.now().toString(36)}`);
  }, s);
}

/**
 * A warm-up and a measured run of the request `next()` describes (called once per run, so a
 * run's request bodies can differ from every other run's), with the server's CPU time and on
 * PostgreSQL the database server's.
 */
export async function measureLoad(child: Child, next: () => RequestSpec, s: LoadSettings & { postgres: boolean }): Promise<Measurement> {
  if (s.warmup > 0) await fire(child, next(), s.connections, s.warmup);
  const pid = child.process.pid ?? -1;
  const dbTicks = () => (s.postgres ? cpuTicksByName('postgres') : undefined);
  const cpu0 = cpuTicks(pid);
  const db0 = dbTicks();
  const start = nowMicros();
  const r = await fire(child, next(), s.connections, s.duration);
  const end = nowMicros();
  const cpu1 = cpuTicks(pid);
  const db1 = dbTicks();
  const perRequest = (a: number | undefined, b: number | undefined) =>
    a === undefined || b === undefined || r.requests.total === 0 ? Number.NaN : ((b - a) * 10) / r.requests.total;
  return {
    rps: r.requests.average,
    p50: r.latency.p50,
    p99: r.latency.p99,
    total: r.requests.total,
    non2xx: r.non2xx,
    errors: r.errors + r.timeouts,
    statuses: Object.fromEntries(Object.entries(r.statusCodeStats).map(([code, v]) => [code, Number(v.count)])),
    cpuMsPerRequest: perRequest(cpu0, cpu1),
    dbCpuMsPerRequest: perRequest(db0, db1),
    window: [start, end],
  };
}
