import type { Redis } from 'ioredis';
import type { Clock } from '../../kernel/clock.ts';

/**
 * Where a CVV waits, sealed under a card-vault key, for its one use through the relay (PCI DSS
 * 3.3.2: sensitive authentication data before authorisation only encrypted with strong
 * cryptography): at most 10 minutes, never on disk (PCI DSS 3.3.1). In the process that took it,
 * or in Redis with that TTL when REDIS_URL is set, so that any node can use it. `drop` at the
 * first relay response makes it unrecoverable.
 */
export const CVV_TTL_MS = 10 * 60_000;

export interface CvvStore {
  put(token: string, sealed: Buffer): Promise<void>;
  get(token: string): Promise<Buffer | undefined>;
  drop(token: string): Promise<void>;
  close(): void;
}

export function memoryCvvStore(clock: Clock): CvvStore {
  const boxes = new Map<string, { sealed: Buffer; until: number }>();
  const sweep = () => {
    const now = clock.now().getTime();
    for (const [token, entry] of boxes) if (entry.until <= now) forget(token, entry.sealed);
  };
  const forget = (token: string, sealed: Buffer) => {
    sealed.fill(0);
    boxes.delete(token);
  };
  const timer = setInterval(sweep, 30_000);
  timer.unref();
  return {
    async put(token, sealed) {
      const old = boxes.get(token);
      if (old !== undefined) forget(token, old.sealed);
      boxes.set(token, { sealed, until: clock.now().getTime() + CVV_TTL_MS });
    },
    async get(token) {
      const entry = boxes.get(token);
      if (entry === undefined) return undefined;
      if (entry.until <= clock.now().getTime()) {
        forget(token, entry.sealed);
        return undefined;
      }
      return Buffer.from(entry.sealed);
    },
    async drop(token) {
      const entry = boxes.get(token);
      if (entry !== undefined) forget(token, entry.sealed);
    },
    close: () => clearInterval(timer),
  };
}

const redisKey = (token: string) => `custos-cvv:${token}`;

/** Redis holds it only in memory with a TTL; a Redis that persists (RDB/AOF) must not be used (docs/pci-scope.md). */
export function redisCvvStore(redis: Redis): CvvStore {
  return {
    async put(token, sealed) {
      await redis.set(redisKey(token), sealed.toString('base64url'), 'PX', CVV_TTL_MS);
    },
    async get(token) {
      const value = await redis.get(redisKey(token));
      return value === null ? undefined : Buffer.from(value, 'base64url');
    },
    async drop(token) {
      await redis.del(redisKey(token));
    },
    close: () => undefined,
  };
}
