import { randomBytes } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { loadConfig } from '../src/config/config.ts';
import { openRuntime, type Runtime } from '../src/runtime.ts';
import { childEnv, cpuTicks, cpuTicksByName, freePort, settle, startServer, stopAll, type Child } from './children.ts';
import { prepareDatabase } from './databases.ts';
import { PROTECTED_ENV } from './in-process-pair.ts';
import { measureLoad, type Measurement } from './load.ts';
import type { DbKind } from './options.ts';
import { load, machine, revision } from './report.ts';

/**
 * The consent bench (issue 12), on a fresh database per engine; `npm run bench -- --ops consent`
 * or `node bench/consent.ts [--db sqlite,postgres] [--customers N]`.
 * - Seeding, in this process: `customers` customers (100,000) stored through the vault's own
 *   create (sealed records, each under its own data key), each granting `marketing` through the
 *   consent service (ledger row, audit entry, receipt), a few hundred at a time. Then the runtime
 *   closes and Custos starts as a server (a child process), as in service.
 * - Reads: GET /v1/customers/{id} of random seeded customers for `marketing` (consent granted:
 *   the gate reads the ledger) against the same reads for `account` (contract), alternating
 *   rounds under autocannon; the ratio of their req/s. Target ≥ 0.8.
 * - Export: GET /v1/purposes/marketing/audience streamed to the end and counted here: customers/s
 *   (target ≥ 10,000/s) and the server's peak RSS (VmHWM), once for the first 10,000 customers
 *   and once for all of them, each on a freshly started server: flat memory means the two peaks
 *   are close, whatever the audience.
 * Figures are read on a quiet machine; nothing here asserts a timing.
 */
export const CONSENT_READ_TARGET = 0.8;
export const EXPORT_TARGET_PER_S = 10_000;
const SMALL_AUDIENCE = 10_000;
/**
 * The whole audience once more on a server whose V8 heap is capped (--max-old-space-size): peak RSS
 * also measures how lazily V8 collects when memory is plentiful; finishing under the cap shows
 * that what the export keeps alive is bounded.
 */
const HEAP_CAP_MIB = 192;
const BATCH = 250;

export interface ExportRun {
  readonly customers: number;
  readonly seconds: number;
  readonly perSecond: number;
  /** Server CPU seconds during the export. */
  readonly cpuSeconds: number;
  /** PostgreSQL server CPU seconds during the export (NaN on SQLite). */
  readonly dbCpuSeconds: number;
  readonly rssStartMiB: number;
  readonly peakRssMiB: number;
  /** The server's --max-old-space-size, when capped. */
  readonly heapCapMiB: number | undefined;
}

export interface ConsentBenchResult {
  readonly kind: DbKind;
  readonly customers: number;
  readonly seedSeconds: number;
  readonly reads: { readonly consent: Measurement[]; readonly contract: Measurement[]; readonly ratio: number };
  readonly exports: readonly ExportRun[];
}

const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const ACCOUNT = { actor: { ref: 'apikey:bench', kind: 'apikey' as const, purposes: ['account'] }, purpose: 'account', requestId: 'bench-seed' };

/**
 * Customers through the vault's create path, `BATCH` in flight, and a `marketing` grant each through
 * the consent service's import (ledger rows and their audit entries, one transaction per batch).
 */
async function seed(runtime: Runtime, customers: number, log: (line: string) => void): Promise<string[]> {
  const ids: string[] = [];
  const noticeVersion = runtime.consent.notices.current();
  for (let from = 0; from < customers; from += BATCH) {
    const batch = Array.from({ length: Math.min(BATCH, customers - from) }, (_, j) => from + j);
    const made = await Promise.all(
      batch.map(
        async (i) =>
          (
            await runtime.vault.create(ACCOUNT, 'customers', undefined, {
              email: `consent-${i}@shop.example`,
              name: `Customer ${i} Example`,
              phone: `+44 20 7946 ${String(i % 10_000).padStart(4, '0')}`,
              locale: i % 2 === 0 ? 'en-GB' : 'de-DE',
            })
          ).id,
      ),
    );
    await runtime.consent.importGrants(ACCOUNT, made.map((subjectId) => ({ subjectId, purpose: 'marketing', noticeVersion })));
    ids.push(...made);
    if ((from + BATCH) % 10_000 < BATCH) log(`  seeded ${Math.min(from + BATCH, customers).toLocaleString('en')} customers`);
  }
  await runtime.audit.chainPending();
  return ids;
}

function statusKiB(pid: number, field: 'VmHWM' | 'VmRSS'): number {
  const m = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m === null ? Number.NaN : Number(m[1]);
}

/** Streams the audience (up to `limit`) from a freshly started server; counts lines as they arrive. */
async function exportOnce(env: Record<string, string>, apiKey: string, limit: number | undefined, postgres: boolean, heapCapMiB?: number): Promise<ExportRun> {
  const port = await freePort();
  const nodeFlags = heapCapMiB === undefined ? [] : [`--max-old-space-size=${heapCapMiB}`];
  const child: Child = await startServer({ name: 'custos', script: 'src/main.ts', port, env: { ...env, CUSTOS_PORT: String(port) }, nodeFlags });
  try {
    const pid = child.process.pid!;
    await settle(child);
    const rssStart = statusKiB(pid, 'VmRSS');
    const cpu0 = cpuTicks(pid);
    const db0 = postgres ? cpuTicksByName('postgres') : undefined;
    const start = process.hrtime.bigint();
    const res = await fetch(`${child.url}/v1/purposes/marketing/audience${limit === undefined ? '' : `?limit=${limit}`}`, { headers: { authorization: `Bearer ${apiKey}` } });
    if (res.status !== 200 || res.body === null) throw new Error(`the export answered ${res.status}: ${await res.text()}`);
    let lines = 0;
    for await (const chunk of res.body) for (const byte of chunk as Uint8Array) if (byte === 10) lines += 1;
    const seconds = Number(process.hrtime.bigint() - start) / 1e9;
    const cpu1 = cpuTicks(pid);
    const db1 = postgres ? cpuTicksByName('postgres') : undefined;
    return {
      customers: lines,
      seconds,
      perSecond: lines / seconds,
      cpuSeconds: cpu0 === undefined || cpu1 === undefined ? Number.NaN : (cpu1 - cpu0) / 100,
      dbCpuSeconds: db0 === undefined || db1 === undefined ? Number.NaN : (db1 - db0) / 100,
      rssStartMiB: rssStart / 1024,
      peakRssMiB: statusKiB(pid, 'VmHWM') / 1024,
      heapCapMiB,
    };
  } finally {
    await child.stop();
  }
}

export async function benchConsent(
  kind: DbKind,
  opts: { pgUrl: string; customers?: number; duration: number; warmup: number; connections: number; rounds: number },
  log: (line: string) => void = () => undefined,
): Promise<ConsentBenchResult> {
  const customers = opts.customers ?? 100_000;
  const db = await prepareDatabase(kind, opts.pgUrl);
  const env = childEnv({ ...db.protectedEnv, CUSTOS_ROOT_KEY: randomBytes(32).toString('base64'), CUSTOS_HOST: '127.0.0.1', ...PROTECTED_ENV });
  try {
    log(`consent: ${db.label}, seeding ${customers.toLocaleString('en')} customers who grant marketing`);
    const runtime = await openRuntime(loadConfig({ ...env, CUSTOS_LOG_LEVEL: 'silent' }), { background: false });
    let ids: string[];
    let apiKey: string;
    const t0 = process.hrtime.bigint();
    try {
      apiKey = (await runtime.apiKeys.create({ name: 'bench', purposes: ['account', 'marketing'] })).key.reveal();
      ids = await seed(runtime, customers, log);
    } finally {
      await runtime.close();
    }
    const seedSeconds = Number(process.hrtime.bigint() - t0) / 1e9;
    log(`  seeded in ${seedSeconds.toFixed(0)} s (load ${load()})`);
    await db.analyze();

    const exports: ExportRun[] = [];
    for (const [limit, cap] of [[Math.min(SMALL_AUDIENCE, customers), undefined], [undefined, undefined], [undefined, HEAP_CAP_MIB]] as const) {
      const run = await exportOnce(env, apiKey, limit, kind === 'postgres', cap);
      log(
        `  export of ${run.customers.toLocaleString('en')}${cap === undefined ? '' : ` (heap capped at ${cap} MiB)`}: ${run.seconds.toFixed(2)} s, ${Math.round(run.perSecond).toLocaleString('en')} customers/s (server cpu ${run.cpuSeconds.toFixed(1)} s${Number.isNaN(run.dbCpuSeconds) ? '' : `, database cpu ${run.dbCpuSeconds.toFixed(1)} s`}), RSS ${run.rssStartMiB.toFixed(0)} MiB at start, peak ${run.peakRssMiB.toFixed(0)} MiB (load ${load()})`,
      );
      exports.push(run);
    }

    const port = await freePort();
    const child = await startServer({ name: 'custos', script: 'src/main.ts', port, env: { ...env, CUSTOS_PORT: String(port) } });
    const consent: Measurement[] = [];
    const contract: Measurement[] = [];
    try {
      const pick = () => ids[Math.floor(Math.random() * ids.length)]!;
      const reads = (purpose: string) => () => ({
        method: 'GET' as const,
        headers: { authorization: `Bearer ${apiKey}`, 'custos-purpose': purpose },
        setupRequest: (req: { path?: string }) => ({ ...req, path: `/v1/customers/${pick()}` }),
      });
      for (let round = 0; round < opts.rounds; round++) {
        const order: [string, Measurement[]][] = round % 2 === 0 ? [['marketing', consent], ['account', contract]] : [['account', contract], ['marketing', consent]];
        for (const [purpose, into] of order) {
          await settle(child);
          const m = await measureLoad(child, reads(purpose), { ...opts, postgres: kind === 'postgres' });
          if (m.non2xx + m.errors > 0) throw new Error(`reads for ${purpose} failed: ${JSON.stringify(m.statuses)}, ${m.errors} errors`);
          log(`  reads for ${purpose.padEnd(9)} ${String(Math.round(m.rps)).padStart(6)} req/s  p99 ${m.p99} ms  cpu ${m.cpuMsPerRequest.toFixed(2)} ms/req (load ${load()})`);
          into.push(m);
        }
      }
    } finally {
      await child.stop();
    }
    const ratio = median(consent.map((m, i) => m.rps / contract[i]!.rps));
    return { kind, customers, seedSeconds, reads: { consent, contract, ratio }, exports };
  } finally {
    await stopAll();
    await db.cleanup();
  }
}

/** The results as Markdown tables (docs/benchmarks.md). */
export function consentMarkdown(results: readonly ConsentBenchResult[]): string {
  const met = (ok: boolean) => (ok ? 'met' : 'MISSED');
  const lines = [
    `| database | reads for marketing (consent) | reads for account (contract) | ratio (median of rounds) | target ≥ ${CONSENT_READ_TARGET} | |`,
    '|---|--:|--:|--:|--:|---|',
  ];
  for (const r of results) {
    const a = median(r.reads.consent.map((m) => m.rps));
    const b = median(r.reads.contract.map((m) => m.rps));
    lines.push(`| ${r.kind} | ${Math.round(a)} req/s | ${Math.round(b)} req/s | ${r.reads.ratio.toFixed(2)} | ${CONSENT_READ_TARGET} | ${met(r.reads.ratio >= CONSENT_READ_TARGET)} |`);
  }
  lines.push('', `| database | audience | server heap | export | customers/s (target ≥ ${EXPORT_TARGET_PER_S.toLocaleString('en')}) | server CPU | RSS at start | peak RSS | |`, '|---|--:|---|--:|--:|--:|--:|--:|---|');
  for (const r of results)
    for (const e of r.exports)
      lines.push(
        `| ${r.kind} | ${e.customers.toLocaleString('en')} | ${e.heapCapMiB === undefined ? 'default' : `capped at ${e.heapCapMiB} MiB`} | ${e.seconds.toFixed(2)} s | ${Math.round(e.perSecond).toLocaleString('en')} | ${e.cpuSeconds.toFixed(1)} s | ${e.rssStartMiB.toFixed(0)} MiB | ${e.peakRssMiB.toFixed(0)} MiB | ${met(e.perSecond >= EXPORT_TARGET_PER_S)} |`,
      );
  return lines.join('\n');
}

export const consentMeets = (r: ConsentBenchResult) => r.reads.ratio >= CONSENT_READ_TARGET && r.exports.every((e) => e.perSecond >= EXPORT_TARGET_PER_S);

if (import.meta.main) {
  const { values } = parseArgs({ options: { db: { type: 'string' }, customers: { type: 'string' }, duration: { type: 'string' }, rounds: { type: 'string' } }, strict: true });
  const customers = Number(values.customers ?? 100_000);
  if (!Number.isInteger(customers) || customers < 1) throw new Error('--customers must be a positive integer');
  const results: ConsentBenchResult[] = [];
  const log = (line: string) => process.stderr.write(`bench: ${line}\n`);
  log(`${machine()}; revision ${revision()}; load average ${load()}`);
  try {
    for (const kind of (values.db ?? 'sqlite,postgres').split(',') as DbKind[])
      results.push(
        await benchConsent(kind, { pgUrl: process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test', customers, duration: Number(values.duration ?? 5), warmup: 1, connections: 32, rounds: Number(values.rounds ?? 3) }, log),
      );
  } finally {
    await stopAll();
  }
  process.stdout.write(`\n${consentMarkdown(results)}\n\nmachine: ${machine()}; revision ${revision()}; load average at the end ${load()}\n`);
}
