import { loadavg } from 'node:os';
import { writeFileSync } from 'node:fs';
import { settle, stopAll } from './children.ts';
import { prepareDatabase, type BenchDatabase } from './databases.ts';
import { measure, type Measurement } from './load.ts';
import { parseOptions, USAGE, type BenchOptions, type DbKind, type Op } from './options.ts';
import { profileProtected } from './profile-run.ts';
import { json, load, machine, markdown, meets, revision, row, type Round, type Row } from './report.ts';
import { setUpProtected, startProtected, startTwin, type Target } from './servers.ts';
import { benchRights, rightsMarkdown, type RightsBenchResult } from './rights.ts';
import { benchSignIn, SIGNIN_TARGET, signInMarkdown, type SignInResult } from './signin.ts';
import { benchCards, cardsMarkdown, cardsMeet, type CardsResult } from './cards.ts';
import { sanityCheck, seed, type Seeded } from './workload.ts';
import { benchBlastRadius, blastMarkdown, blastMeets, type BlastResult } from './blast-radius.ts';
import { benchDetection, detectionMarkdown, type DetectionBenchResult } from './detection.ts';
import { benchConsent, consentMarkdown, consentMeets, type ConsentBenchResult } from './consent.ts';
import { auditVerifyMarkdown, benchAuditVerify, type AuditVerifyResult } from './audit-verify.ts';

/**
 * `npm run bench`: Custos (protected) against its unprotected twin, on SQLite and PostgreSQL,
 * for read, lookup by email and create. Both servers run as child processes; autocannon loads
 * one at a time from here, alternating protected and unprotected in rounds, and reports req/s,
 * p99 and the protected/unprotected ratio. Then, each on a fresh database, the sign-in bench
 * (bench/signin.ts), the card vault bench (bench/cards.ts), an incident's blast radius over a
 * large audit log (bench/blast-radius.ts) and the detection bench (vault reads with detection on
 * against off, in this process: bench/detection.ts).
 */
const DETECTION_TARGET = 0.9;
const log = (line: string) => process.stderr.write(`bench: ${line}\n`);
const OP_ORDER: readonly Op[] = ['read', 'lookup', 'create'];
const ATTACKERS = 200;

let current: BenchDatabase | undefined;

async function one(target: Target, op: Op, seeded: Seeded, opts: BenchOptions, kind: DbKind): Promise<Measurement> {
  const m = await measure(target, op, seeded, { ...opts, postgres: kind === 'postgres' });
  const codes = Object.entries(m.statuses)
    .filter(([code]) => !code.startsWith('2'))
    .map(([code, n]) => `${n}× ${code}`);
  const bad = m.non2xx + m.errors > 0 ? `, FAILED: ${[...codes, `${m.errors} connection errors`].join(', ')}` : '';
  log(`  ${target.side.padEnd(11)} ${op.padEnd(6)} ${String(Math.round(m.rps)).padStart(6)} req/s  p99 ${String(m.p99).padStart(5)} ms  cpu ${m.cpuMsPerRequest.toFixed(2)} ms/req${Number.isNaN(m.dbCpuMsPerRequest) ? '' : `  database cpu ${m.dbCpuMsPerRequest.toFixed(2)} ms/req`}${bad}  (load ${loadavg()[0]!.toFixed(1)})`);
  if (bad !== '') log(`  ${target.child.name} said: ${target.child.stderr().trim().split('\n').slice(-3).join(' | ').slice(0, 600)}`);
  // The other server's run starts only once this one's background work is done.
  await settle(target.child);
  return m;
}

async function benchDatabase(kind: DbKind, opts: BenchOptions): Promise<Row[]> {
  const db = await prepareDatabase(kind, opts.pgUrl);
  current = db;
  const rev = revision();
  log(`${db.label}; revision ${rev}`);
  try {
    const setup = await setUpProtected(db);
    const custos = await startProtected(setup);
    const twin = await startTwin(db, setup.apiKey);
    const seeded = new Map<Target, Seeded>();
    for (const t of [custos, twin]) {
      log(`seeding ${opts.seed} customers into the ${t.side} server`);
      const s = await seed(t, opts.seed);
      await sanityCheck(t, s);
      seeded.set(t, s);
      await settle(t.child);
    }
    await db.analyze();
    const rows: Row[] = [];
    // Read and lookup first, so both servers are measured over tables of the same size.
    for (const op of OP_ORDER.filter((o) => opts.ops.includes(o))) {
      const rounds: Round[] = [];
      for (let i = 0; i < opts.rounds; i++) {
        // Alternate who goes first, so neither side always gets the warmer (or noisier) slot.
        const order = i % 2 === 0 ? [custos, twin] : [twin, custos];
        const got = new Map<Target, Measurement>();
        for (const t of order) got.set(t, await one(t, op, seeded.get(t)!, opts, kind));
        rounds.push({ protected: got.get(custos)!, unprotected: got.get(twin)! });
      }
      rows.push(row(kind, db.label, op, rev, rounds));
    }
    await Promise.all([custos.child.stop(), twin.child.stop()]);
    if (opts.profile) await profileProtected(setup, seeded.get(custos)!, opts, kind);
    return rows;
  } finally {
    await stopAll();
    current = undefined;
    await db.cleanup();
  }
}

/** The sign-in bench (bench/signin.ts) on a fresh database: its servers have keys of their own. */
async function signInOn(kind: DbKind, opts: BenchOptions): Promise<SignInResult> {
  const db = await prepareDatabase(kind, opts.pgUrl);
  current = db;
  log(`sign-in: ${db.label}`);
  try {
    return await benchSignIn(db, {
      duration: opts.duration,
      warmup: Math.max(opts.warmup, 1),
      connections: opts.connections,
      attackers: ATTACKERS,
      seed: Math.min(opts.seed, 500),
      rounds: opts.rounds,
      redisUrl: undefined,
    });
  } finally {
    await stopAll();
    current = undefined;
    await db.cleanup();
  }
}

/** The card vault bench (bench/cards.ts) on a fresh database. */
async function cardsOn(kind: DbKind, opts: BenchOptions): Promise<CardsResult> {
  const db = await prepareDatabase(kind, opts.pgUrl);
  current = db;
  log(`cards: ${db.label}`);
  try {
    return await benchCards(db, opts);
  } finally {
    await stopAll();
    current = undefined;
    await db.cleanup();
  }
}

async function main(): Promise<number> {
  const opts = parseOptions(process.argv.slice(2), process.env);
  if (opts === 'help') {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  log(`${machine()}; revision ${revision()}; load average ${load()}`);
  log(`${opts.rounds} rounds × ${opts.duration} s per server and operation (after ${opts.warmup} s warm-up each), ${opts.connections} connections, ${opts.seed} seeded customers`);
  const rows: Row[] = [];
  const signIns: SignInResult[] = [];
  const cards: CardsResult[] = [];
  const blasts: BlastResult[] = [];
  const detections: DetectionBenchResult[] = [];
  const rightsResults: RightsBenchResult[] = [];
  const consents: ConsentBenchResult[] = [];
  const auditVerifies: AuditVerifyResult[] = [];
  for (const kind of opts.databases) {
    if (OP_ORDER.some((o) => opts.ops.includes(o))) rows.push(...(await benchDatabase(kind, opts)));
    if (opts.ops.includes('signin')) signIns.push(await signInOn(kind, opts));
    if (opts.ops.includes('cards')) cards.push(await cardsOn(kind, opts));
    if (opts.ops.includes('blast')) blasts.push(await benchBlastRadius(kind, { entries: opts.blastEntries, pgUrl: opts.pgUrl }));
    if (opts.ops.includes('detection')) {
      log(`detection: ${kind}`);
      // As many reads per round as the other loads would make in their duration at a few hundred per second.
      const reads = Math.max(200, Math.round(opts.duration * 400));
      detections.push(await benchDetection({ kind, pgUrl: opts.pgUrl, redisUrl: opts.redisUrl, reads, rounds: opts.rounds, inFlight: opts.connections, seed: Math.min(opts.seed, 1000) }));
    }
    // In this process, on a fresh database of its own (bench/rights.ts).
    if (opts.ops.includes('rights')) rightsResults.push(await benchRights(kind, 10_000, opts.pgUrl, log));
    if (opts.ops.includes('consent')) consents.push(await benchConsent(kind, opts, log));
    if (opts.ops.includes('audit-verify')) auditVerifies.push(await benchAuditVerify(kind, { entries: 1_000_000, pgUrl: opts.pgUrl }));
  }
  const tables = [
    rows.length > 0 ? markdown(rows) : '',
    signIns.length > 0 ? signInMarkdown(signIns, ATTACKERS) : '',
    cards.length > 0 ? cardsMarkdown(cards) : '',
    blasts.length > 0 ? blastMarkdown(blasts) : '',
    detections.length > 0 ? detectionMarkdown(detections) : '',
    rightsResults.length > 0 ? rightsMarkdown(rightsResults) : '',
    consents.length > 0 ? consentMarkdown(consents) : '',
    auditVerifies.length > 0 ? auditVerifyMarkdown(auditVerifies) : '',
  ].filter((t) => t !== '');
  process.stdout.write(`\n${tables.join('\n\n')}\n\nmachine: ${machine()}\nrevision: ${revision()}; load average at the end: ${load()}\n`);
  const settings = { duration: opts.duration, warmup: opts.warmup, connections: opts.connections, rounds: opts.rounds, seed: opts.seed };
  if (opts.json !== undefined) writeFileSync(opts.json, `${JSON.stringify({ ...(JSON.parse(json(rows, settings)) as object), signin: signIns, cards, blast_radius: blasts, detection: detections, rights: rightsResults, consent: consents }, null, 2)}\n`);
  const detectionMeets = (r: DetectionBenchResult) => [r.on, r.redis].every((s) => s === undefined || s.perSecond / r.off.perSecond >= DETECTION_TARGET);
  return opts.check && !(rows.every(meets) && signIns.every((r) => r.reads.ratio >= SIGNIN_TARGET) && cards.every(cardsMeet) && blasts.every(blastMeets) && detections.every(detectionMeets) && consents.every(consentMeets)) ? 1 : 0;
}

for (const signal of ['SIGINT', 'SIGTERM'] as const)
  process.once(signal, () => {
    log(`${signal}: stopping the servers`);
    void stopAll()
      .then(() => current?.cleanup())
      .finally(() => process.exit(130));
  });

try {
  process.exitCode = await main();
} catch (error) {
  log(error instanceof Error ? (error.stack ?? error.message) : String(error));
  process.exitCode = 1;
} finally {
  await stopAll();
}
