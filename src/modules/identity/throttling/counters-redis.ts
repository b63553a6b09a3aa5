import type { Redis } from 'ioredis';
import type { BucketState, CounterStore, HitResult } from './throttle-policy.ts';

/**
 * Attempt counters in Redis, for several server processes (REDIS_URL): the rule of
 * throttle-policy.ts as one Lua script, which Redis runs atomically, so counters hold across
 * processes and parallel attempts never exceed the budget (PCI DSS 8.3.4). Each bucket is a hash
 * that expires once it has nothing left to remember. Times come from the caller's clock.
 */
const HIT = `
local k = KEYS[1]
local now = tonumber(ARGV[1])
local limit = tonumber(ARGV[2])
local win = tonumber(ARGV[3])
local blockMs = tonumber(ARGV[4])
local backoff = tonumber(ARGV[5])
local maxBlock = tonumber(ARGV[6])
local v = redis.call('HMGET', k, 'c', 'w', 'b', 's')
local c = tonumber(v[1]) or 0
local w = tonumber(v[2]) or now
local b = tonumber(v[3]) or 0
local s = tonumber(v[4]) or 0
if b > now then return {0, b - now} end
if now - w >= win or c >= limit then
  if b == 0 or now - b >= win then s = 0 end
  c = 0
  w = now
end
c = c + 1
if c >= limit then
  local d = math.floor(blockMs * (backoff ^ s) + 0.5)
  if d > maxBlock then d = maxBlock end
  b = now + d
  s = s + 1
end
local f = function(x) return string.format('%.0f', x) end
redis.call('HSET', k, 'c', f(c), 'w', f(w), 'b', f(b), 's', f(s))
local keep = math.max(w + win, b + win) - now
if keep < 1 then keep = 1 end
redis.call('PEXPIRE', k, f(keep))
return {1, limit - c, c, w, b, s}
`;

export function createRedisCounters(deps: { redis: Redis; prefix?: string }): CounterStore {
  const { redis } = deps;
  const prefix = deps.prefix ?? 'custos:identity:throttle:';
  const name = (key: string) => `${prefix}${key}`;

  return {
    kind: 'redis',

    async hit(key, policy, now) {
      const reply = (await redis.eval(
        HIT,
        1,
        name(key),
        now,
        policy.limit,
        policy.windowMs,
        policy.blockMs,
        policy.backoff,
        policy.maxBlockMs,
      )) as number[];
      const [allowed, value, count, windowStart, blockedUntil, strikes] = reply.map(Number);
      if (allowed !== 1) return { allowed: false, retryAfterMs: value ?? 0 } satisfies HitResult;
      return {
        allowed: true,
        remaining: value ?? 0,
        state: { count: count ?? 0, windowStart: windowStart ?? now, blockedUntil: blockedUntil ?? 0, strikes: strikes ?? 0 },
      };
    },

    async peek(key): Promise<BucketState | undefined> {
      const [c, w, b, s] = await redis.hmget(name(key), 'c', 'w', 'b', 's');
      if (c === null || c === undefined) return undefined;
      return { count: Number(c), windowStart: Number(w), blockedUntil: Number(b), strikes: Number(s) };
    },

    async clear(key) {
      await redis.del(name(key));
    },
  };
}
