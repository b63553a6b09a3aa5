import { Agent, request } from 'node:http';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import type { RequestSpec } from 'autocannon';
import { childEnv, cpuTicks, freePort, runNode, settle, startServer, stopAll, type Child } from './children.ts';
import { prepareDatabase, type BenchDatabase } from './databases.ts';
import { measureLoad, type Measurement } from './load.ts';
import { parseOptions, type DbKind } from './options.ts';
import { load, machine, revision } from './report.ts';
import { setUpProtected, startProtected } from './servers.ts';
import { requestFor } from './workload.ts';

/**
 * The card vault's speed (issue 14, "Speed"), as ratios and overheads, never as assertions:
 * - tokenise (`POST /v1/cards`) against a customer create (`POST /v1/customers`) on the same
 *   Custos, in alternating autocannon loads (target: tokenise ≥ 0.8× the create rate);
 * - the relay's overhead: one client calls a loopback processor (bench/processor.ts, plain HTTP,
 *   its own process) directly, and through `POST /v1/relay` with a `{{ tok.pan }}` placeholder,
 *   one call at a time, keep-alive on both sides (client to Custos, Custos to the processor), in
 *   alternating runs; p50 and p99 of each, the overhead (relay − direct; target p50 ≤ 2 ms), and
 *   the CPU each call costs: client and processor for a direct call, client, Custos and processor
 *   through the relay.
 * `npm run bench -- --ops cards`, or `node bench/cards.ts [--db sqlite] [--duration S] …` with the
 * options of `npm run bench`.
 */
export const CARDS_TARGETS = { tokeniseRatio: 0.8, relayOverheadP50Ms: 2 } as const;

export interface CardsOptions {
  readonly duration: number;
  readonly warmup: number;
  readonly connections: number;
  readonly rounds: number;
}

export interface RelaySide {
  readonly calls: number;
  readonly p50: number;
  readonly p99: number;
  /** CPU time per call in ms, by process. */
  readonly cpuMs: { readonly client: number; readonly processor: number; readonly custos?: number };
  readonly failed: number;
}

export interface CardsResult {
  readonly db: DbKind;
  readonly dbLabel: string;
  readonly tokenise: Measurement;
  readonly create: Measurement;
  readonly ratio: number;
  readonly roundRatios: readonly number[];
  readonly direct: RelaySide;
  readonly relay: RelaySide;
  readonly overhead: { readonly p50: number; readonly p99: number };
}

const log = (line: string) => process.stderr.write(`bench cards: ${line}\n`);
const YEAR = new Date().getUTCFullYear() + 3;
const PAN = '4111111111111111';

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length === 0 ? Number.NaN : s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
const quantile = (sorted: readonly number[], q: number) => (sorted.length === 0 ? Number.NaN : sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!);

/** One POST on a keep-alive agent; resolves the status once the answer is read. */
function post(agent: Agent, url: string, headers: Record<string, string>, body: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', agent, headers: { ...headers, 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)) } }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}

async function apiKey(env: Record<string, string>, purposes: string): Promise<string> {
  const out = await runNode(['bin/custos.js', 'apikey', 'create', '--name', `bench-${purposes}`, '--purposes', purposes], env);
  const key = out.trim().split('\n').at(-1) ?? '';
  if (!key.startsWith('ck_')) throw new Error('custos apikey create printed no key');
  return key;
}

/** Sequential calls for `seconds`: latencies (ms), and CPU ticks of the children named. */
async function calls(seconds: number, call: () => Promise<number>, children: readonly Child[]): Promise<{ samples: number[]; failed: number; ticks: number[]; clientMs: number }> {
  const ticks0 = children.map((c) => cpuTicks(c.process.pid ?? -1) ?? Number.NaN);
  const cpu0 = process.cpuUsage();
  const samples: number[] = [];
  let failed = 0;
  const until = performance.now() + seconds * 1000;
  while (performance.now() < until) {
    const start = performance.now();
    const status = await call();
    samples.push(performance.now() - start);
    if (status !== 200) failed += 1;
  }
  const cpu = process.cpuUsage(cpu0);
  const ticks = children.map((c, i) => ((cpuTicks(c.process.pid ?? -1) ?? Number.NaN) - ticks0[i]!) * 10);
  return { samples, failed, ticks, clientMs: (cpu.user + cpu.system) / 1000 };
}

export async function benchCards(db: BenchDatabase, o: CardsOptions): Promise<CardsResult> {
  const processorPort = await freePort();
  const processor = await startServer({ name: 'processor', script: 'bench/processor.ts', port: processorPort, env: childEnv({ PROCESSOR_PORT: String(processorPort) }) });
  const setup = await setUpProtected(db);
  const env = { ...setup.env, CUSTOS_RELAY_ALLOWLIST: processor.url };
  const payments = await apiKey(env, 'payments');
  const custos = await startProtected({ env, apiKey: await apiKey(env, 'account') });
  const postgres = db.kind === 'postgres';

  // Tokenise against a customer create, alternating who goes first.
  const tokenise: RequestSpec = {
    method: 'POST',
    path: '/v1/cards',
    headers: { authorization: `Bearer ${payments}`, 'content-type': 'application/json', 'custos-purpose': 'payments' },
    body: JSON.stringify({ pan: PAN, exp_month: 6, exp_year: YEAR, cardholder_name: 'Bench Holder' }),
  };
  let tag = 0;
  const create = () => requestFor('create', custos, { ids: [], emails: [] }, `cards-${tag++}-${Date.now().toString(36)}`);
  const settings = { duration: o.duration, warmup: o.warmup, connections: o.connections, postgres };
  const rounds: { tokenise: Measurement; create: Measurement }[] = [];
  for (let i = 0; i < o.rounds; i++) {
    const got: Partial<Record<'tokenise' | 'create', Measurement>> = {};
    for (const which of i % 2 === 0 ? (['tokenise', 'create'] as const) : (['create', 'tokenise'] as const)) {
      got[which] = await measureLoad(custos.child, which === 'tokenise' ? () => tokenise : create, settings);
      log(`  ${which.padEnd(8)} ${Math.round(got[which].rps)} req/s  p99 ${got[which].p99} ms  cpu ${got[which].cpuMsPerRequest.toFixed(2)} ms/req  non-2xx ${got[which].non2xx}`);
      await settle(custos.child);
    }
    rounds.push({ tokenise: got.tokenise!, create: got.create! });
  }

  // The relay against a direct call, one call at a time, keep-alive everywhere.
  const tokenised = await fetch(`${custos.child.url}/v1/cards`, { method: 'POST', headers: tokenise.headers as Record<string, string>, body: tokenise.body as string });
  if (tokenised.status !== 201) throw new Error(`tokenise answered ${tokenised.status}`);
  const { token } = (await tokenised.json()) as { token: string };
  const card = (pan: string, month: string, year: string, name: string) => ({ amount: '10.00', currency: 'EUR', card: { number: pan, exp_month: month, exp_year: year, name } });
  const directBody = JSON.stringify(card(PAN, '06', String(YEAR), 'Bench Holder'));
  const relayBody = JSON.stringify({
    url: `${processor.url}/authorise`,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: card(`{{ ${token}.pan }}`, `{{ ${token}.exp_month }}`, `{{ ${token}.exp_year }}`, `{{ ${token}.cardholder_name }}`),
  });
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const direct = () => post(agent, `${processor.url}/authorise`, {}, directBody);
  const relayed = () => post(agent, `${custos.child.url}/v1/relay`, { authorization: `Bearer ${payments}`, 'custos-purpose': 'payments' }, relayBody);
  const sides = { direct: { samples: [] as number[], failed: 0, client: 0, processor: 0, custos: 0 }, relay: { samples: [] as number[], failed: 0, client: 0, processor: 0, custos: 0 } };
  for (let i = 0; i < o.rounds; i++) {
    for (const which of i % 2 === 0 ? (['direct', 'relay'] as const) : (['relay', 'direct'] as const)) {
      const fn = which === 'direct' ? direct : relayed;
      if (o.warmup > 0) await calls(o.warmup, fn, []);
      const run = await calls(o.duration, fn, [processor, custos.child]);
      const side = sides[which];
      side.samples.push(...run.samples);
      side.failed += run.failed;
      side.client += run.clientMs;
      side.processor += run.ticks[0]!;
      side.custos += run.ticks[1]!;
      log(`  ${which.padEnd(8)} ${run.samples.length} calls  p50 ${quantile([...run.samples].sort((a, b) => a - b), 0.5).toFixed(2)} ms  failed ${run.failed}`);
      await settle(custos.child);
    }
  }
  agent.destroy();
  const summary = (side: (typeof sides)['direct'], withCustos: boolean): RelaySide => {
    const sorted = [...side.samples].sort((a, b) => a - b);
    const n = sorted.length;
    return {
      calls: n,
      p50: quantile(sorted, 0.5),
      p99: quantile(sorted, 0.99),
      cpuMs: { client: side.client / n, processor: side.processor / n, ...(withCustos ? { custos: side.custos / n } : {}) },
      failed: side.failed,
    };
  };
  const d = summary(sides.direct, false);
  const r = summary(sides.relay, true);
  await Promise.all([custos.child.stop(), processor.stop()]);
  const roundRatios = rounds.map((x) => (x.create.rps === 0 ? 0 : x.tokenise.rps / x.create.rps));
  const mid = (ms: readonly Measurement[]) => [...ms].sort((a, b) => a.rps - b.rps)[Math.floor(ms.length / 2)]!;
  return {
    db: db.kind,
    dbLabel: db.label,
    tokenise: mid(rounds.map((x) => x.tokenise)),
    create: mid(rounds.map((x) => x.create)),
    ratio: median(roundRatios),
    roundRatios,
    direct: d,
    relay: r,
    overhead: { p50: r.p50 - d.p50, p99: r.p99 - d.p99 },
  };
}

export const cardsMeet = (r: CardsResult) =>
  r.ratio >= CARDS_TARGETS.tokeniseRatio && r.overhead.p50 <= CARDS_TARGETS.relayOverheadP50Ms && r.tokenise.non2xx + r.create.non2xx + r.direct.failed + r.relay.failed === 0;

export function cardsMarkdown(results: readonly CardsResult[]): string {
  const f0 = (n: number) => Math.round(n).toLocaleString('en-US');
  const ms = (n: number) => `${n.toFixed(2)} ms`;
  const lines = [
    '| database | tokenise req/s | tokenise CPU/req | customer create req/s | create CPU/req | ratio | target | |',
    '|---|--:|--:|--:|--:|--:|--:|---|',
  ];
  for (const r of results)
    lines.push(
      `| ${r.dbLabel} | ${f0(r.tokenise.rps)} | ${ms(r.tokenise.cpuMsPerRequest)} | ${f0(r.create.rps)} | ${ms(r.create.cpuMsPerRequest)} | ${r.ratio.toFixed(2)}× (rounds ${r.roundRatios.map((x) => x.toFixed(2)).join(', ')}) | ≥ ${CARDS_TARGETS.tokeniseRatio}× | ${r.ratio >= CARDS_TARGETS.tokeniseRatio ? 'met' : 'missed'} |`,
    );
  lines.push(
    '',
    '| database | direct p50 / p99 | relay p50 / p99 | overhead p50 / p99 | CPU per direct call (client + processor) | CPU per relay call (client + Custos + processor) | target | |',
    '|---|--:|--:|--:|--:|--:|--:|---|',
  );
  for (const r of results) {
    const failed = r.direct.failed + r.relay.failed;
    lines.push(
      `| ${r.dbLabel} | ${ms(r.direct.p50)} / ${ms(r.direct.p99)} | ${ms(r.relay.p50)} / ${ms(r.relay.p99)} | ${ms(r.overhead.p50)} / ${ms(r.overhead.p99)} | ${ms(r.direct.cpuMs.client)} + ${ms(r.direct.cpuMs.processor)} | ${ms(r.relay.cpuMs.client)} + ${ms(r.relay.cpuMs.custos ?? Number.NaN)} + ${ms(r.relay.cpuMs.processor)} | p50 ≤ ${CARDS_TARGETS.relayOverheadP50Ms} ms | ${r.overhead.p50 <= CARDS_TARGETS.relayOverheadP50Ms ? 'met' : 'missed'}${failed > 0 ? ` (${failed} failed calls)` : ''} |`,
    );
  }
  return lines.join('\n');
}

async function main(argv: readonly string[]): Promise<number> {
  const opts = parseOptions(argv, process.env);
  if (opts === 'help') {
    process.stdout.write('node bench/cards.ts [--db LIST] [--duration S] [--warmup S] [--connections N] [--rounds N] [--pg-url URL] [--json FILE] [--check]\n');
    return 0;
  }
  log(`${machine()}; ${opts.rounds} rounds × ${opts.duration} s after ${opts.warmup} s warm-up, ${opts.connections} connections`);
  const results: CardsResult[] = [];
  for (const kind of opts.databases) {
    const db = await prepareDatabase(kind, opts.pgUrl);
    log(db.label);
    try {
      results.push(await benchCards(db, opts));
    } finally {
      await stopAll();
      await db.cleanup();
    }
  }
  process.stdout.write(`\n${cardsMarkdown(results)}\n\nmachine: ${machine()}; revision ${revision()}; load average at end ${load()}\n`);
  if (opts.json !== undefined) writeFileSync(opts.json, `${JSON.stringify({ machine: machine(), revision: revision(), results }, null, 2)}\n`);
  return opts.check && !results.every(cardsMeet) ? 1 : 0;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    process.exitCode = await main(process.argv.slice(2));
  } catch (error) {
    log(error instanceof Error ? (error.stack ?? error.message) : String(error));
    process.exitCode = 1;
  } finally {
    await stopAll();
  }
}
