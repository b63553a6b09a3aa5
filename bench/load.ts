import autocannon, { type Result } from 'autocannon';
import { cpuTicks, cpuTicksByName } from './children.ts';
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

async function fire(target: Target, op: Op, seeded: Seeded, connections: number, duration: number): Promise<Result> {
  loads += 1;
  const tag = `${op}-${target.side}-${loads}-${Date.now().toString(36)}`;
  return autocannon({
    url: target.child.url,
    connections,
    duration,
    timeout: 30,
    requests: [requestFor(op, target, seeded, tag)],
  });
}

const nowMicros = () => Number(process.hrtime.bigint() / 1000n);

export async function measure(target: Target, op: Op, seeded: Seeded, s: LoadSettings & { postgres: boolean }): Promise<Measurement> {
  if (s.warmup > 0) await fire(target, op, seeded, s.connections, s.warmup);
  const pid = target.child.process.pid ?? -1;
  const dbTicks = () => (s.postgres ? cpuTicksByName('postgres') : undefined);
  const cpu0 = cpuTicks(pid);
  const db0 = dbTicks();
  const start = nowMicros();
  const r = await fire(target, op, seeded, s.connections, s.duration);
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
