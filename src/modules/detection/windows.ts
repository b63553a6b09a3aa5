import type { Redis } from 'ioredis';

/**
 * Sliding windows the rules count in: `distinct` (how many different members a key saw within the
 * window: accounts per source, customers per actor) and `count` (how many events: failures per
 * account, sign-ins service-wide). In one process they live in memory; with REDIS_URL they live in
 * Redis, so every server process adds to and reads the same windows (a sorted set per distinct
 * window, scored by time; ten time buckets per count window), one pipeline per batch of events.
 */
export interface WindowOp {
  readonly kind: 'distinct' | 'count';
  readonly key: string;
  readonly windowMs: number;
  /** distinct: the members seen in this batch. */
  readonly members?: readonly string[];
  /** count: how many events this batch adds. */
  readonly n?: number;
}

export interface WindowStore {
  readonly shared: boolean;
  /** Adds each op's batch at `now` and answers each window's figure after it, in order. */
  apply(ops: readonly WindowOp[], now: number): Promise<number[]>;
  close(): Promise<void>;
}

/** Most members one distinct window keeps in memory; beyond it the oldest are dropped (the figure is then a floor). */
const MAX_MEMBERS = 100_000;
const BUCKETS = 10;

export function memoryWindows(): WindowStore {
  // Insertion order is age order: a member seen again moves to the end, so expiry trims the front.
  const distinct = new Map<string, { windowMs: number; members: Map<string, number> }>();
  const counts = new Map<string, { windowMs: number; buckets: Map<number, number> }>();
  let sweptAt = 0;

  function sweep(now: number): void {
    if (now - sweptAt < 60_000) return;
    sweptAt = now;
    for (const [key, w] of distinct) {
      trim(w.members, now - w.windowMs);
      if (w.members.size === 0) distinct.delete(key);
    }
    for (const [key, w] of counts) if (total(w.buckets, w.windowMs, now) === 0) counts.delete(key);
  }

  function trim(members: Map<string, number>, cutoff: number): void {
    for (const [m, at] of members) {
      if (at > cutoff && members.size <= MAX_MEMBERS) return;
      members.delete(m);
    }
  }

  function total(buckets: Map<number, number>, windowMs: number, now: number): number {
    const size = windowMs / BUCKETS;
    const first = Math.floor((now - windowMs) / size) + 1;
    let sum = 0;
    for (const [b, n] of buckets) {
      if (b < first) buckets.delete(b);
      else sum += n;
    }
    return sum;
  }

  return {
    shared: false,
    async apply(ops, now) {
      sweep(now);
      return ops.map((op) => {
        if (op.kind === 'distinct') {
          let w = distinct.get(op.key);
          if (w === undefined) distinct.set(op.key, (w = { windowMs: op.windowMs, members: new Map() }));
          for (const m of op.members ?? []) {
            w.members.delete(m);
            w.members.set(m, now);
          }
          trim(w.members, now - op.windowMs);
          return w.members.size;
        }
        let w = counts.get(op.key);
        if (w === undefined) counts.set(op.key, (w = { windowMs: op.windowMs, buckets: new Map() }));
        const bucket = Math.floor(now / (op.windowMs / BUCKETS));
        w.buckets.set(bucket, (w.buckets.get(bucket) ?? 0) + (op.n ?? 0));
        return total(w.buckets, op.windowMs, now);
      });
    },
    async close() {
      distinct.clear();
      counts.clear();
    },
  };
}

/** Windows in Redis under `prefix` (one per installation, so that databases sharing a Redis never mix). */
export function redisWindows(redis: Redis, prefix: string): WindowStore {
  return {
    shared: true,
    async apply(ops, now) {
      if (ops.length === 0) return [];
      const pipeline = redis.pipeline();
      // Where each op's answer sits in the pipeline's replies.
      const answers: { at: number; kind: 'card' | 'sum' }[] = [];
      let replies = 0;
      for (const op of ops) {
        const key = `${prefix}${op.kind === 'distinct' ? 'd' : 'c'}:${op.key}`;
        if (op.kind === 'distinct') {
          const members = op.members ?? [];
          if (members.length > 0) {
            pipeline.zadd(key, ...members.flatMap((m) => [now, m]));
            replies += 1;
          }
          pipeline.zremrangebyscore(key, '-inf', now - op.windowMs);
          pipeline.zcard(key);
          pipeline.pexpire(key, op.windowMs);
          answers.push({ at: replies + 1, kind: 'card' });
          replies += 3;
          continue;
        }
        const size = op.windowMs / BUCKETS;
        const bucket = Math.floor(now / size);
        pipeline.incrby(`${key}:${bucket}`, op.n ?? 0);
        pipeline.pexpire(`${key}:${bucket}`, op.windowMs + size);
        const window = Array.from({ length: BUCKETS }, (_, i) => `${key}:${bucket - i}`);
        pipeline.mget(...window);
        answers.push({ at: replies + 2, kind: 'sum' });
        replies += 3;
      }
      const results = (await pipeline.exec()) ?? [];
      return answers.map(({ at, kind }) => {
        const [error, value] = results[at] ?? [new Error('no reply'), null];
        if (error !== null) throw error;
        if (kind === 'card') return Number(value);
        return (value as (string | null)[]).reduce((sum, v) => sum + (v === null ? 0 : Number(v)), 0);
      });
    },
    async close() {},
  };
}
