import { parseArgs } from 'node:util';

/**
 * Benchmark settings: command-line flags first, then BENCH_* variables, then defaults sized for
 * the project's 2-core machine. `npm run bench -- --duration 3 --connections 16` is a short run.
 */
export type DbKind = 'sqlite' | 'postgres';
export type Op = 'read' | 'lookup' | 'create';
/** The vault loads, the sign-in bench, the card vault bench, the incident blast radius, the detection bench and the data-subject request bench. */
export type BenchOp = Op | 'signin' | 'cards' | 'blast' | 'detection' | 'rights' | 'consent' | 'audit-verify';

export interface BenchOptions {
  readonly duration: number;
  readonly warmup: number;
  readonly connections: number;
  readonly rounds: number;
  readonly seed: number;
  /** Audit entries seeded for the blast-radius bench. */
  readonly blastEntries: number;
  readonly databases: readonly DbKind[];
  readonly ops: readonly BenchOp[];
  readonly pgUrl: string;
  /** Redis for the detection bench's shared-windows side; undefined: that side is left out. */
  readonly redisUrl: string | undefined;
  readonly json: string | undefined;
  readonly profile: boolean;
  readonly check: boolean;
}

const USAGE = `npm run bench -- [options]
  --duration S      seconds of each measured load (BENCH_DURATION, 5)
  --warmup S        seconds of warm-up before each load, not measured (BENCH_WARMUP, 1)
  --connections N   concurrent connections (BENCH_CONNECTIONS, 32)
  --rounds N        alternating protected/unprotected loads per operation; the
                    median is reported (BENCH_ROUNDS, 3)
  --seed N          customers stored before the read and lookup loads (BENCH_SEED, 2000)
  --db LIST         sqlite,postgres (BENCH_DB)
  --ops LIST        read,lookup,create,signin,cards (BENCH_OPS); signin is the
                    sign-in bench (bench/signin.ts: vault reads under 200
                    wrong-password connections), cards the card vault bench
                    (bench/cards.ts: tokenise against a customer create, relay
                    overhead over a direct processor call), each on a fresh
                    database of its own
                    ; blast is an incident's blast radius over a large audit
                    log (bench/blast-radius.ts)
  --blast-entries N audit entries seeded for blast (BENCH_BLAST_ENTRIES, 1000000)
                    ; detection is vault reads with detection on against off
                    (bench/detection.ts)
                    ; rights is the export of 10,000 orders and the erasure of
                    1 and of 10,000 (bench/rights.ts)
                    ; consent is reads for marketing against account, and the
                    audience export of 100,000 customers (bench/consent.ts)
                    ; audit-verify (not by default) verifies an audit tree of
                    1,000,000 entries on worker threads (bench/audit-verify.ts)
  --pg-url URL      PostgreSQL server (BENCH_PG_URL, postgres://postgres@127.0.0.1:5432/test)
  --redis-url URL   Redis for the detection bench's shared windows (BENCH_REDIS_URL,
                    redis://127.0.0.1:6379; "none" leaves that side out)
  --json FILE       also write the results as JSON
  --profile         after the loads, CPU-profile the protected server per operation
  --check           exit 1 when a ratio misses its target`;

function list<T extends string>(raw: string, allowed: readonly T[], name: string): T[] {
  const items = raw.split(',').map((s) => s.trim()).filter((s) => s.length > 0);
  for (const i of items) if (!(allowed as readonly string[]).includes(i)) throw new Error(`${name}: unknown ${i}; one of ${allowed.join(', ')}`);
  return items as T[];
}

function positive(raw: string, name: string, min = 1): number {
  const n = Number(raw);
  if (!Number.isFinite(n) || n < min) throw new Error(`${name} must be a number ≥ ${min}`);
  return n;
}

export function parseOptions(argv: readonly string[], env: Record<string, string | undefined>): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: [...argv],
    options: {
      duration: { type: 'string' },
      warmup: { type: 'string' },
      connections: { type: 'string' },
      rounds: { type: 'string' },
      seed: { type: 'string' },
      'blast-entries': { type: 'string' },
      db: { type: 'string' },
      ops: { type: 'string' },
      'pg-url': { type: 'string' },
      'redis-url': { type: 'string' },
      json: { type: 'string' },
      profile: { type: 'boolean' },
      check: { type: 'boolean' },
      help: { type: 'boolean', short: 'h' },
    },
    strict: true,
  });
  if (values.help === true) return 'help';
  const pgUrl = values['pg-url'] ?? env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test';
  const redisRaw = values['redis-url'] ?? env.BENCH_REDIS_URL ?? 'redis://127.0.0.1:6379';
  const redisUrl = redisRaw === 'none' ? undefined : redisRaw;
  // Bench traffic stays on this machine.
  const loopback = ['127.0.0.1', 'localhost', '[::1]', '::1'];
  if (!loopback.includes(new URL(pgUrl).hostname)) throw new Error('--pg-url must point to the loopback address');
  if (redisUrl !== undefined && !loopback.includes(new URL(redisUrl).hostname)) throw new Error('--redis-url must point to the loopback address');
  return {
    duration: positive(values.duration ?? env.BENCH_DURATION ?? '5', '--duration'),
    warmup: positive(values.warmup ?? env.BENCH_WARMUP ?? '1', '--warmup', 0),
    connections: Math.floor(positive(values.connections ?? env.BENCH_CONNECTIONS ?? '32', '--connections')),
    rounds: Math.floor(positive(values.rounds ?? env.BENCH_ROUNDS ?? '3', '--rounds')),
    seed: Math.floor(positive(values.seed ?? env.BENCH_SEED ?? '2000', '--seed')),
    blastEntries: Math.floor(positive(values['blast-entries'] ?? env.BENCH_BLAST_ENTRIES ?? '1000000', '--blast-entries')),
    databases: list(values.db ?? env.BENCH_DB ?? 'sqlite,postgres', ['sqlite', 'postgres'] as const, '--db'),
    ops: list(values.ops ?? env.BENCH_OPS ?? 'read,lookup,create,signin,cards,blast,detection,rights,consent', ['read', 'lookup', 'create', 'signin', 'cards', 'blast', 'detection', 'rights', 'consent', 'audit-verify'] as const, '--ops'),
    pgUrl,
    redisUrl,
    json: values.json,
    profile: values.profile === true,
    check: values.check === true,
  };
}

export { USAGE };
