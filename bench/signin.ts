import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import autocannon, { type RequestSpec, type Result } from 'autocannon';
import { Secret } from '../src/kernel/secret.ts';
import { createPasswordService, defaultHashConcurrency } from '../src/modules/identity/passwords/password-service.ts';
import { ROOT, stopAll } from './children.ts';
import { prepareDatabase, type BenchDatabase } from './databases.ts';
import type { DbKind } from './options.ts';
import { load, machine, revision } from './report.ts';
import { setUpProtected, startProtected, type Target } from './servers.ts';
import { seed, type Seeded } from './workload.ts';

/**
 * Sign-in under load (`node bench/signin.ts`, or `benchSignIn()` from bench/run.ts):
 * - sign-in latency p50/p99 with one client, and sign-ins per second with many (each one argon2id
 *   verification: the server's hashes per second), plus raw argon2id hashes per second in-process;
 * - vault read throughput while N (default 200) connections hammer POST /v1/auth/signin with wrong
 *   passwords, as a ratio to the read throughput without them (target ≥ 0.9×, the speed issue). The attack runs in
 *   a child process of its own, so it does not share the read generator's event loop. Per-address
 *   and global sign-in throttles are lifted for the run: every attempt reaches the password check,
 *   as from a large botnet — the worst case, where only bounded hashing protects the reads.
 */
export interface SignInOptions {
  readonly duration: number;
  readonly warmup: number;
  readonly connections: number;
  readonly attackers: number;
  readonly seed: number;
  /** Rounds of (reads alone, reads under attack), back to back; the ratio is the median of the rounds'. */
  readonly rounds: number;
  /** Attempt counters in Redis (REDIS_URL) instead of the database. */
  readonly redisUrl: string | undefined;
}

export interface SignInResult {
  readonly db: DbKind;
  readonly dbLabel: string;
  readonly counters: 'database' | 'redis';
  /** Median sign-up latency (ms), one client, for a new and for an already registered email. */
  readonly signup: { readonly newMs: number; readonly existingMs: number };
  readonly signin: { readonly p50: number; readonly p99: number; readonly perSecond: number; readonly p99Loaded: number; readonly statuses: Record<string, number> };
  readonly hashes: { readonly serverPerSecond: number; readonly inProcessPerSecond: number; readonly concurrency: number };
  readonly reads: {
    readonly baseline: number;
    readonly underAttack: number;
    readonly ratio: number;
    readonly roundRatios: readonly number[];
    readonly baselineP99: number;
    readonly underAttackP99: number;
    readonly attack: { readonly perSecond: number; readonly statuses: Record<string, number> };
  };
}

export const SIGNIN_TARGET = 0.9;
const PASSWORD = 'violet umbrellas march north at dawn';
const log = (line: string) => process.stderr.write(`bench signin: ${line}\n`);
const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;
function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length === 0 ? 0 : s.length % 2 === 1 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
const statuses = (r: Result) => Object.fromEntries(Object.entries(r.statusCodeStats).map(([k, v]) => [k, v.count]));

/**
 * Sign-up latency, one request at a time, for addresses never seen and for addresses that have an
 * account: the two paths must do the same work (one argon2id hash, one mail after the answer), so
 * their medians should match.
 */
async function signUpMedians(url: string, existing: readonly string[], n: number): Promise<{ newMs: number; existingMs: number }> {
  const time = async (email: string) => {
    const start = performance.now();
    const res = await fetch(`${url}/v1/auth/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: PASSWORD }) });
    if (res.status !== 202) throw new Error(`sign-up answered ${res.status}`);
    return performance.now() - start;
  };
  const fresh: number[] = [];
  const known: number[] = [];
  // Alternating, so that a drift of the machine affects both alike.
  for (let i = 0; i < n; i++) {
    fresh.push(await time(`bench-new-${i}-${randomBytes(4).toString('hex')}@shop.example`));
    known.push(await time(existing[i % existing.length]!));
  }
  return { newMs: median(fresh), existingMs: median(known) };
}

function signInRequest(emails: readonly string[], password: () => string): RequestSpec {
  return {
    method: 'POST',
    path: '/v1/auth/signin',
    headers: { 'content-type': 'application/json' },
    setupRequest: (req) => ({ ...req, body: JSON.stringify({ email: pick(emails), password: password(), session_delivery: 'token' }) }),
  };
}

function readRequest(target: Target, seeded: Seeded): RequestSpec {
  return {
    method: 'GET',
    headers: { ...target.headers, 'custos-purpose': 'support' },
    setupRequest: (req) => ({ ...req, path: `/v1/customers/${pick(seeded.ids)}` }),
  };
}

const run = (url: string, connections: number, duration: number, request: RequestSpec) =>
  autocannon({ url, connections, duration, timeout: 30, requests: [request] });

/** Raw argon2id verifications per second in this process, at the service's default concurrency. */
async function inProcessHashes(seconds: number): Promise<{ perSecond: number; concurrency: number }> {
  const concurrency = defaultHashConcurrency();
  const passwords = createPasswordService({ concurrency: { max: concurrency, queue: concurrency * 4 } });
  try {
    const { hash } = await passwords.hashNew(new Secret(PASSWORD), { realm: 'customer', secondFactor: false });
    let done = 0;
    const until = Date.now() + seconds * 1000;
    const worker = async () => {
      while (Date.now() < until) {
        await passwords.verify(hash, new Secret(PASSWORD));
        done += 1;
      }
    };
    const start = Date.now();
    await Promise.all(Array.from({ length: concurrency }, worker));
    return { perSecond: done / ((Date.now() - start) / 1000), concurrency };
  } finally {
    await passwords.close();
  }
}

/** The attack as a child process: `node bench/signin.ts --attack URL --connections N --duration S`; prints its result as JSON. */
function attackInChild(url: string, connections: number, duration: number): Promise<{ perSecond: number; statuses: Record<string, number> }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [fileURLToPath(import.meta.url), '--attack', url, '--connections', String(connections), '--duration', String(duration)], {
      cwd: ROOT,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out) as { perSecond: number; statuses: Record<string, number> }) : reject(new Error(`attack exited ${String(code)}`))));
  });
}

async function attack(url: string, connections: number, duration: number): Promise<void> {
  // Unknown addresses, so no account lockout short-cuts the work: each attempt costs a dummy argon2id verification.
  const emails = Array.from({ length: 5000 }, (_, i) => `nobody-${i}-${randomBytes(3).toString('hex')}@attack.example`);
  const r = await run(url, connections, duration, signInRequest(emails, () => `wrong password ${randomBytes(6).toString('hex')}`));
  process.stdout.write(JSON.stringify({ perSecond: r.requests.average, statuses: statuses(r) }));
}

export async function benchSignIn(db: BenchDatabase, o: SignInOptions): Promise<SignInResult> {
  const base = await setUpProtected(db);
  const setup = {
    ...base,
    env: {
      ...base.env,
      CUSTOS_SIGNIN_IP_LIMIT: '1000000000',
      CUSTOS_SIGNIN_GLOBAL_LIMIT: '1000000000',
      // The flood comes from one address: detection would block it (credential stuffing) and the readers with it.
      CUSTOS_DETECTION: 'false',
      ...(o.redisUrl === undefined ? {} : { REDIS_URL: o.redisUrl }),
    },
  };
  const target = await startProtected(setup);
  try {
    const url = target.child.url;
    log(`${db.label}: seeding ${o.seed} customers and 16 sign-in accounts`);
    const seeded = await seed(target, o.seed);
    const emails = Array.from({ length: 16 }, (_, i) => `bench-${i}-${randomBytes(3).toString('hex')}@shop.example`);
    for (const email of emails) {
      const res = await fetch(`${url}/v1/auth/signup`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email, password: PASSWORD }) });
      if (res.status !== 202) throw new Error(`sign-up answered ${res.status}`);
    }
    const check = await fetch(`${url}/v1/auth/signin`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ email: emails[0], password: PASSWORD, session_delivery: 'token' }) });
    if (check.status !== 200) throw new Error(`sign-in check answered ${check.status}`);

    const signup = await signUpMedians(url, emails, 20);
    log(`sign-up, 1 client: median ${signup.newMs.toFixed(1)} ms for a new email, ${signup.existingMs.toFixed(1)} ms for an existing one`);

    const good = signInRequest(emails, () => PASSWORD);
    if (o.warmup > 0) await run(url, 1, o.warmup, good);
    const single = await run(url, 1, o.duration, good);
    log(`sign-in, 1 client: p50 ${single.latency.p50} ms, p99 ${single.latency.p99} ms`);
    const loaded = await run(url, 16, o.duration, good);
    log(`sign-in, 16 clients: ${loaded.requests.average.toFixed(1)}/s, p99 ${loaded.latency.p99} ms, statuses ${JSON.stringify(statuses(loaded))}`);

    const reads = readRequest(target, seeded);
    const probe = await fetch(`${url}/v1/customers/${seeded.ids[0]!}`, { headers: { ...target.headers, 'custos-purpose': 'support' } }).catch((e: unknown) => e);
    if (!(probe instanceof Response) || probe.status !== 200)
      throw new Error(`read check failed (${probe instanceof Response ? probe.status : String(probe)}): ${target.child.stderr().slice(-2000)}`);
    if (o.warmup > 0) await run(url, o.connections, o.warmup, reads);
    const rounds: { baseline: Result; under: Result; attack: { perSecond: number; statuses: Record<string, number> } }[] = [];
    for (let i = 1; i <= o.rounds; i++) {
      const baseline = await run(url, o.connections, o.duration, reads);
      const attacking = attackInChild(url, o.attackers, o.warmup + o.duration + 2);
      await new Promise((r) => setTimeout(r, Math.max(1, o.warmup) * 1000));
      const under = await run(url, o.connections, o.duration, reads);
      const attackResult = await attacking;
      rounds.push({ baseline, under, attack: attackResult });
      log(
        `round ${i}: reads alone ${Math.round(baseline.requests.average)} req/s (p99 ${baseline.latency.p99} ms), under ${o.attackers} attacking connections ${Math.round(under.requests.average)} req/s (p99 ${under.latency.p99} ms); attack ${attackResult.perSecond.toFixed(1)} attempts/s ${JSON.stringify(attackResult.statuses)}`,
      );
      for (const [name, r] of [['alone', baseline], ['under attack', under]] as const)
        if (r.non2xx > 0 || r.requests.total === 0)
          log(`round ${i} reads ${name}: statuses ${JSON.stringify(statuses(r))}, errors ${r.errors}, timeouts ${r.timeouts}; server said: ${target.child.stderr().slice(-1500)}`);
      // Let the attack's abandoned attempts leave the line before the next baseline.
      await new Promise((r) => setTimeout(r, 2000));
    }
    await target.child.stop();
    const ratios = rounds.map((r) => (r.baseline.requests.average === 0 ? 0 : r.under.requests.average / r.baseline.requests.average));

    const raw = await inProcessHashes(Math.max(3, Math.min(o.duration, 10)));
    log(`argon2id in-process: ${raw.perSecond.toFixed(1)} verifications/s at concurrency ${raw.concurrency}`);
    return {
      db: db.kind,
      dbLabel: db.label,
      counters: o.redisUrl === undefined ? 'database' : 'redis',
      signup,
      signin: { p50: single.latency.p50, p99: single.latency.p99, perSecond: loaded.requests.average, p99Loaded: loaded.latency.p99, statuses: statuses(loaded) },
      hashes: { serverPerSecond: loaded.requests.average, inProcessPerSecond: raw.perSecond, concurrency: raw.concurrency },
      reads: {
        baseline: median(rounds.map((r) => r.baseline.requests.average)),
        underAttack: median(rounds.map((r) => r.under.requests.average)),
        ratio: median(ratios),
        roundRatios: ratios,
        baselineP99: median(rounds.map((r) => r.baseline.latency.p99)),
        underAttackP99: median(rounds.map((r) => r.under.latency.p99)),
        attack: {
          perSecond: median(rounds.map((r) => r.attack.perSecond)),
          statuses: rounds.reduce<Record<string, number>>((acc, r) => {
            for (const [k, v] of Object.entries(r.attack.statuses)) acc[k] = (acc[k] ?? 0) + v;
            return acc;
          }, {}),
        },
      },
    };
  } finally {
    await target.child.stop();
  }
}

const f0 = (n: number) => Math.round(n).toLocaleString('en-US');

export function signInMarkdown(results: readonly SignInResult[], attackers: number): string {
  const lines = [
    `| database | counters | sign-in p50 | sign-in p99 | sign-ins/s (16 clients) | argon2id/s in-process | reads/s alone | reads/s under ${attackers} wrong-password connections | ratio | target | |`,
    '|---|---|--:|--:|--:|--:|--:|--:|--:|--:|---|',
  ];
  for (const r of results)
    lines.push(
      `| ${r.dbLabel} | ${r.counters} | ${r.signin.p50} ms | ${r.signin.p99} ms | ${r.signin.perSecond.toFixed(1)} | ${r.hashes.inProcessPerSecond.toFixed(1)} (×${r.hashes.concurrency}) | ${f0(r.reads.baseline)} | ${f0(r.reads.underAttack)} | ${r.reads.ratio.toFixed(2)}× (rounds ${r.reads.roundRatios.map((x) => x.toFixed(2)).join(', ')}) | ≥ ${SIGNIN_TARGET}× | ${r.reads.ratio >= SIGNIN_TARGET ? 'met' : 'MISSED'} |`,
    );
  lines.push('', '| database | sign-up median, new email | sign-up median, existing email |', '|---|--:|--:|');
  for (const r of results) lines.push(`| ${r.dbLabel} | ${r.signup.newMs.toFixed(1)} ms | ${r.signup.existingMs.toFixed(1)} ms |`);
  return lines.join('\n');
}

async function main(argv: readonly string[]): Promise<number> {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      attack: { type: 'string' },
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      attackers: { type: 'string' },
      seed: { type: 'string' },
      rounds: { type: 'string' },
      db: { type: 'string' },
      'pg-url': { type: 'string' },
      redis: { type: 'string' },
      json: { type: 'string' },
    },
    strict: true,
  });
  const num = (v: string | undefined, d: number) => (v === undefined ? d : Number(v));
  if (values.attack !== undefined) {
    const url = new URL(values.attack);
    if (url.hostname !== '127.0.0.1') throw new Error('the attack stays on 127.0.0.1');
    await attack(values.attack, num(values.connections, 200), num(values.duration, 10));
    return 0;
  }
  const o: SignInOptions = {
    duration: num(values.duration, 10),
    warmup: num(values.warmup, 2),
    connections: num(values.connections, 32),
    attackers: num(values.attackers, 200),
    seed: num(values.seed, 500),
    rounds: num(values.rounds, 3),
    redisUrl: values.redis,
  };
  const pgUrl = values['pg-url'] ?? 'postgres://postgres@127.0.0.1:5432/test';
  if (!['127.0.0.1', 'localhost'].includes(new URL(pgUrl).hostname)) throw new Error('--pg-url must point to the loopback address');
  const kinds = (values.db ?? 'sqlite,postgres').split(',') as DbKind[];
  log(`${machine()}; ${o.duration} s per load after ${o.warmup} s warm-up`);
  const results: SignInResult[] = [];
  for (const kind of kinds) {
    const db = await prepareDatabase(kind, pgUrl);
    try {
      results.push(await benchSignIn(db, o));
    } finally {
      await stopAll();
      await db.cleanup();
    }
  }
  process.stdout.write(`\n${signInMarkdown(results, o.attackers)}\n\nmachine: ${machine()}; revision ${revision()}; load average at end ${load()}\n`);
  if (values.json !== undefined) writeFileSync(values.json, `${JSON.stringify({ machine: machine(), revision: revision(), options: o, results }, null, 2)}\n`);
  return results.every((r) => r.reads.ratio >= SIGNIN_TARGET) ? 0 : 1;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  try {
    process.exitCode = await main(process.argv.slice(2));
  } catch (error) {
    log(error instanceof Error ? error.message : String(error));
    process.exitCode = 1;
  } finally {
    await stopAll();
  }
}
