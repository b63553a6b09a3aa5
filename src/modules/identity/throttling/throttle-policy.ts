import { z } from 'zod';

/**
 * One attempt counter ("bucket") and the rule that moves it, shared by both backends: the
 * database backend runs this function under compare-and-set, the Redis backend runs the same rule
 * as a Lua script (counters-redis.ts), and a conformance test holds the two to each other.
 *
 * Every attempt is counted before it is checked, so parallel attempts can never exceed the budget:
 * the `limit`-th attempt is let through and starts a block of `blockMs × backoff^strikes` (capped
 * at `maxBlockMs`); while blocked nothing passes. A window of `windowMs` bounds what counts as
 * "consecutive"; strikes (and with them the backoff) fall back to zero after a quiet window.
 */
export const BucketPolicySchema = z.object({
  limit: z.number().int().min(1),
  windowMs: z.number().int().min(1),
  blockMs: z.number().int().min(1),
  backoff: z.number().min(1).max(10),
  maxBlockMs: z.number().int().min(1),
});
export type BucketPolicy = z.output<typeof BucketPolicySchema>;

export interface BucketState {
  readonly count: number;
  readonly windowStart: number;
  /** End of the current or last block (epoch ms), 0 when never blocked. */
  readonly blockedUntil: number;
  readonly strikes: number;
}

export type HitResult =
  | { readonly allowed: true; readonly remaining: number; readonly state: BucketState }
  | { readonly allowed: false; readonly retryAfterMs: number };

export function blockDuration(p: BucketPolicy, strikes: number): number {
  return Math.min(p.maxBlockMs, Math.round(p.blockMs * p.backoff ** strikes));
}

/** Counts one attempt at `now` (epoch ms). */
export function hit(state: BucketState | undefined, now: number, p: BucketPolicy): HitResult {
  let { count, windowStart, blockedUntil, strikes } = state ?? { count: 0, windowStart: now, blockedUntil: 0, strikes: 0 };
  if (blockedUntil > now) return { allowed: false, retryAfterMs: blockedUntil - now };
  if (now - windowStart >= p.windowMs || count >= p.limit) {
    // A new budget: the window ran out, or the block that ended the last budget is over.
    if (blockedUntil === 0 || now - blockedUntil >= p.windowMs) strikes = 0;
    count = 0;
    windowStart = now;
  }
  count += 1;
  if (count >= p.limit) {
    blockedUntil = now + blockDuration(p, strikes);
    strikes += 1;
  }
  return { allowed: true, remaining: p.limit - count, state: { count, windowStart, blockedUntil, strikes } };
}

/** When a bucket holds nothing worth remembering any more (for expiry and sweeping). */
export function forgetAfter(state: BucketState, p: BucketPolicy): number {
  return Math.max(state.windowStart + p.windowMs, state.blockedUntil + p.windowMs);
}

/** The three budgets of sign-in. Account numbers follow PCI DSS 8.3.4 (≤ 10 attempts, ≥ 30 minutes). */
export const LockoutPolicySchema = z.object({
  account: BucketPolicySchema.default({
    limit: 10,
    windowMs: 24 * 3_600_000,
    blockMs: 30 * 60_000,
    backoff: 1,
    maxBlockMs: 30 * 60_000,
  }),
  ip: BucketPolicySchema.default({ limit: 100, windowMs: 15 * 60_000, blockMs: 60_000, backoff: 2, maxBlockMs: 3_600_000 }),
  global: BucketPolicySchema.default({ limit: 10_000, windowMs: 60_000, blockMs: 10_000, backoff: 2, maxBlockMs: 5 * 60_000 }),
});
export type LockoutPolicy = z.output<typeof LockoutPolicySchema>;
export type LockoutPolicyInput = z.input<typeof LockoutPolicySchema>;

/** Where buckets live: the database (default) or Redis (several processes, REDIS_URL). Keys arrive hashed. */
export interface CounterStore {
  readonly kind: 'database' | 'redis';
  /** Counts one attempt atomically: concurrent hits on one key see each other. */
  hit(key: string, policy: BucketPolicy, now: number): Promise<HitResult>;
  peek(key: string): Promise<BucketState | undefined>;
  clear(key: string): Promise<void>;
  /** Deletes buckets with nothing left to remember (Redis expires them by itself); returns how many. */
  sweep?(now: number, policyOf: (key: string) => BucketPolicy): Promise<number>;
}
