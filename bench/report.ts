import { execFileSync } from 'node:child_process';
import { cpus, loadavg, totalmem } from 'node:os';
import type { Measurement } from './load.ts';
import type { DbKind, Op } from './options.ts';

/** Targets of the speed issue, per database: protected req/s divided by unprotected req/s. */
export const TARGETS: Record<DbKind, Record<Op, number>> = {
  sqlite: { read: 0.4, lookup: 0.5, create: 0.6 },
  postgres: { read: 0.5, lookup: 0.5, create: 0.5 },
};
const target = (r: Row) => TARGETS[r.db][r.op];

export interface Round {
  readonly protected: Measurement;
  readonly unprotected: Measurement;
}

/**
 * One operation on one database over several rounds. Each round loads the two servers back to
 * back, so a round's ratio compares runs that shared the machine's conditions; the reported
 * ratio is the median of the rounds' ratios, req/s and p99 the medians of each side.
 */
export interface Row {
  readonly db: DbKind;
  readonly dbLabel: string;
  readonly op: Op;
  /** The revision measured: the commit, and whether src/ had uncommitted changes when the servers started. */
  readonly revision: string;
  readonly rounds: readonly Round[];
  readonly protected: Measurement;
  readonly unprotected: Measurement;
}

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}

const roundRatio = (r: Round) => (r.unprotected.rps === 0 ? 0 : r.protected.rps / r.unprotected.rps);

function summary(ms: readonly Measurement[]): Measurement {
  const sum = (f: (m: Measurement) => number) => ms.reduce((a, m) => a + f(m), 0);
  return {
    rps: median(ms.map((m) => m.rps)),
    p50: median(ms.map((m) => m.p50)),
    p99: median(ms.map((m) => m.p99)),
    total: sum((m) => m.total),
    non2xx: sum((m) => m.non2xx),
    errors: sum((m) => m.errors),
    cpuMsPerRequest: median(ms.map((m) => m.cpuMsPerRequest)),
    dbCpuMsPerRequest: median(ms.map((m) => m.dbCpuMsPerRequest)),
    statuses: ms.reduce<Record<string, number>>((acc, m) => {
      for (const [k, v] of Object.entries(m.statuses)) acc[k] = (acc[k] ?? 0) + v;
      return acc;
    }, {}),
    window: [ms[0]?.window[0] ?? 0, ms.at(-1)?.window[1] ?? 0],
  };
}

export function row(db: DbKind, dbLabel: string, op: Op, rev: string, rounds: readonly Round[]): Row {
  return { db, dbLabel, op, revision: rev, rounds, protected: summary(rounds.map((r) => r.protected)), unprotected: summary(rounds.map((r) => r.unprotected)) };
}

export const ratio = (r: Row) => median(r.rounds.map(roundRatio));
export const meets = (r: Row) => ratio(r) >= target(r) && r.protected.non2xx === 0 && r.unprotected.non2xx === 0;

export function machine(): string {
  const c = cpus();
  return `${c.length} cores (${c[0]?.model.trim() ?? 'unknown CPU'}), ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.versions.node}, ${process.platform}`;
}

/** The commit measured, and whether src/ had uncommitted changes then. */
export function revision(): string {
  try {
    const git = (...args: string[]) => execFileSync('git', args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim();
    const dirty = git('status', '--porcelain', '--', 'src').length > 0;
    return `${git('rev-parse', '--short', 'HEAD')}${dirty ? ' (src/ with uncommitted changes)' : ''}`;
  } catch {
    return 'unknown';
  }
}

export const load = () => loadavg().map((x) => x.toFixed(1)).join(' ');

const f0 = (n: number) => Math.round(n).toLocaleString('en-US');
const ms = (n: number) => `${n < 10 ? n.toFixed(1) : f0(n)} ms`;

/** The results as a Markdown table (the same one docs/benchmarks.md keeps). */
export function markdown(rows: readonly Row[]): string {
  const lines = [
    '| database | operation | protected req/s | protected p99 | protected CPU/req | unprotected req/s | unprotected p99 | unprotected CPU/req | ratio | target | |',
    '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|',
  ];
  // On PostgreSQL also the database server's CPU per request ("+ 0.21 ms db").
  const cpu = (m: Measurement) =>
    `${Number.isNaN(m.cpuMsPerRequest) ? '?' : `${m.cpuMsPerRequest.toFixed(2)} ms`}${Number.isNaN(m.dbCpuMsPerRequest) ? '' : ` + ${m.dbCpuMsPerRequest.toFixed(2)} ms db`}`;
  for (const r of rows) {
    const failed = r.protected.non2xx + r.unprotected.non2xx + r.protected.errors + r.unprotected.errors;
    const p = r.protected;
    const u = r.unprotected;
    lines.push(
      `| ${r.dbLabel} | ${r.op} | ${f0(p.rps)} | ${ms(p.p99)} | ${cpu(p)} | ${f0(u.rps)} | ${ms(u.p99)} | ${cpu(u)} | ${ratio(r).toFixed(2)}× | ≥ ${target(r)}× | ${meets(r) ? 'met' : 'missed'}${failed > 0 ? ` (${failed} failed requests)` : ''} |`,
    );
  }
  return lines.join('\n');
}

export function json(rows: readonly Row[], settings: object): string {
  return JSON.stringify(
    {
      machine: machine(),
      revision: revision(),
      load_average_at_end: load(),
      settings,
      at: new Date().toISOString(),
      results: rows.map((r) => ({
        database: r.db,
        label: r.dbLabel,
        operation: r.op,
        revision: r.revision,
        protected: { ...r.protected, window: undefined },
        unprotected: { ...r.unprotected, window: undefined },
        rounds: r.rounds.map((x) => ({ protected_rps: x.protected.rps, unprotected_rps: x.unprotected.rps, ratio: roundRatio(x) })),
        ratio: ratio(r),
        target: target(r),
        met: meets(r),
      })),
    },
    null,
    2,
  );
}
