import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { fixedClock } from '../../src/kernel/clock.ts';
import { CVV_TTL_MS, memoryCvvStore, redisCvvStore } from '../../src/modules/cards/cvv-store.ts';

/**
 * Where a sealed CVV waits: at most 10 minutes, gone once dropped — in process memory, or in Redis
 * (real, on 127.0.0.1:6379) with that TTL so any node can use it.
 */
describe('CVV store', () => {
  const redis = new Redis('redis://127.0.0.1:6379', { maxRetriesPerRequest: 1 });
  afterAll(async () => void (await redis.quit()));

  it('in memory: a CVV older than 10 minutes is gone, a dropped one too', async () => {
    const clock = fixedClock(new Date('2026-12-03T12:00:00Z'));
    const store = memoryCvvStore(clock);
    await store.put('tok_A', Buffer.from('sealed-a'));
    await store.put('tok_B', Buffer.from('sealed-b'));
    expect((await store.get('tok_A'))?.toString()).toBe('sealed-a');
    await store.drop('tok_A');
    expect(await store.get('tok_A')).toBeUndefined();
    clock.advance(CVV_TTL_MS);
    expect(await store.get('tok_B')).toBeUndefined();
    store.close();
  });

  it('in Redis: stored with a TTL of at most 10 minutes, gone once dropped', async () => {
    const store = redisCvvStore(redis);
    const token = `tok_T${Date.now()}`;
    await store.put(token, Buffer.from('sealed'));
    expect((await store.get(token))?.toString()).toBe('sealed');
    const ttl = await redis.pttl(`custos-cvv:${token}`);
    expect(ttl).toBeGreaterThan(0);
    expect(ttl).toBeLessThanOrEqual(CVV_TTL_MS);
    await store.drop(token);
    expect(await store.get(token)).toBeUndefined();
  });
});
