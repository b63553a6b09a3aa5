import { randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { Redis } from 'ioredis';
import { afterAll, afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../../kernel/errors.ts';
import { Secret } from '../../../kernel/secret.ts';
import { createDatabaseCounters } from './counters-database.ts';
import { createRedisCounters } from './counters-redis.ts';
import { createLockout, type Lockout } from './lockout.ts';
import { createAuthFailureThrottle } from './auth-failures.ts';
import { identityFixture, type IdentityFixture } from '../test-support/fixture.ts';
import { hit, type BucketPolicy, type BucketState, type CounterStore } from './throttle-policy.ts';
import { createTokenService } from '../accounts/token-service.ts';

const REDIS_URL = 'redis://127.0.0.1:6379';
const redisClients: Redis[] = [];
function redisClient(): Redis {
  const client = new Redis(REDIS_URL, { lazyConnect: false, maxRetriesPerRequest: 2 });
  redisClients.push(client);
  return client;
}
afterAll(async () => {
  await Promise.all(redisClients.map((c) => c.quit()));
});

let f: IdentityFixture;
beforeEach(async () => {
  f = await identityFixture();
});
afterEach(() => f.close());

type Backend = { name: 'database' | 'redis'; counters: () => CounterStore; raw: () => Promise<string> };

/** Each test gets its own Redis key prefix, so runs never see each other's counters. */
let prefix = '';
beforeEach(() => {
  prefix = `custos-test:${randomBytes(6).toString('hex')}:`;
});

const backends: Backend[] = [
  {
    name: 'database',
    counters: () => createDatabaseCounters({ db: f.db }),
    raw: async () => JSON.stringify(await f.db.selectFrom('identity_throttles').selectAll().execute()),
  },
  {
    name: 'redis',
    counters: () => createRedisCounters({ redis: redisClient(), prefix }),
    raw: async () => (await redisClient().keys(`${prefix}*`)).join('\n'),
  },
];

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (error) {
    if (error instanceof AppError) return error.code;
    throw error;
  }
}

describe.each(backends)('lockout on $name', (backend) => {
  let lockout: Lockout;
  beforeEach(() => {
    lockout = createLockout({ counters: backend.counters(), clock: f.clock, key: f.keys.throttleMac });
  });

  it('locks an identifier after 10 consecutive failures, for 30 minutes (PCI DSS 8.3.4)', async () => {
    const remaining: number[] = [];
    for (let i = 0; i < 10; i++) remaining.push((await lockout.attempt({ account: 'customer:abc', ip: '203.0.113.7' })).remaining);
    expect(remaining).toEqual([9, 8, 7, 6, 5, 4, 3, 2, 1, 0]);
    const error = await lockout.attempt({ account: 'customer:abc', ip: '203.0.113.7' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'IDENTITY_ACCOUNT_LOCKED', status: 423, details: { retry_after_seconds: 1800 } });
    expect(await lockout.status('customer:abc')).toMatchObject({ locked: true, until: new Date(f.clock.now().getTime() + 1_800_000).toISOString() });
    // Another identifier is not affected, and neither is the address.
    expect(await outcome(lockout.attempt({ account: 'customer:other', ip: '203.0.113.7' }))).toBe('ok');
    f.clock.advance(29 * 60_000);
    expect(await outcome(lockout.attempt({ account: 'customer:abc' }))).toBe('IDENTITY_ACCOUNT_LOCKED');
    f.clock.advance(60_000);
    expect(await lockout.status('customer:abc')).toEqual({ locked: false, until: undefined, attempts: 0 });
    expect(await lockout.attempt({ account: 'customer:abc' })).toEqual({ remaining: 9 });
  });

  it('lets exactly 10 of 50 parallel guesses reach the password check', async () => {
    const password = await f.passwords.hashNew(new Secret('violet umbrella sings'), { realm: 'customer', secondFactor: false });
    let checked = 0;
    const guess = async (i: number) => {
      await lockout.attempt({ account: 'customer:target', ip: `198.51.100.${i}` });
      checked += 1;
      const { valid } = await f.passwords.verify(password.hash, new Secret(`wrong guess ${i}`));
      if (valid) await lockout.clear('customer:target');
    };
    const results = await Promise.all(Array.from({ length: 50 }, (_, i) => outcome(guess(i))));
    expect(checked).toBe(10);
    expect(results.filter((r) => r === 'ok')).toHaveLength(10);
    expect(results.filter((r) => r === 'IDENTITY_ACCOUNT_LOCKED')).toHaveLength(40);
    expect(await lockout.status('customer:target')).toMatchObject({ locked: true });
  });

  it('a success (or a password reset) clears the count', async () => {
    for (let i = 0; i < 9; i++) await lockout.attempt({ account: 'customer:abc' });
    await lockout.clear('customer:abc');
    expect(await lockout.status('customer:abc')).toEqual({ locked: false, until: undefined, attempts: 0 });
    for (let i = 0; i < 10; i++) await lockout.attempt({ account: 'customer:abc' });
    expect(await outcome(lockout.attempt({ account: 'customer:abc' }))).toBe('IDENTITY_ACCOUNT_LOCKED');
    await lockout.clear('customer:abc');
    expect(await outcome(lockout.attempt({ account: 'customer:abc' }))).toBe('ok');
  });

  it('throttles a client address across identifiers, with growing blocks; an IPv6 /64 counts as one', async () => {
    const tight = createLockout({
      counters: backend.counters(),
      clock: f.clock,
      key: f.keys.throttleMac,
      policy: { ip: { limit: 5, windowMs: 600_000, blockMs: 60_000, backoff: 2, maxBlockMs: 3_600_000 } },
    });
    for (let i = 0; i < 5; i++) await tight.attempt({ account: `customer:${i}`, ip: `2001:db8:1:2::${i + 1}` });
    const blocked = await tight.attempt({ account: 'customer:x', ip: '2001:db8:1:2:ffff:ffff:ffff:ffff' }).catch((e: unknown) => e);
    expect(blocked).toMatchObject({ code: 'IDENTITY_THROTTLED', status: 429, details: { retry_after_seconds: 60 } });
    expect(await outcome(tight.attempt({ account: 'customer:x', ip: '2001:db8:1:3::1' }))).toBe('ok');
    f.clock.advance(60_000);
    for (let i = 0; i < 5; i++) await tight.attempt({ account: `customer:${i}`, ip: '2001:0db8:0001:0002:0:0:0:9' });
    const again = await tight.attempt({ account: 'customer:y', ip: '2001:db8:1:2::1' }).catch((e: unknown) => e);
    expect(again).toMatchObject({ code: 'IDENTITY_THROTTLED', details: { retry_after_seconds: 120 } });
  });

  it('throttles globally past the service-wide ceiling', async () => {
    const tight = createLockout({
      counters: backend.counters(),
      clock: f.clock,
      key: f.keys.throttleMac,
      policy: { global: { limit: 20, windowMs: 60_000, blockMs: 10_000, backoff: 2, maxBlockMs: 300_000 } },
    });
    const results = await Promise.all(
      Array.from({ length: 30 }, (_, i) => outcome(tight.attempt({ account: `customer:${i}`, ip: `192.0.2.${i}` }))),
    );
    expect(results.filter((r) => r === 'ok')).toHaveLength(20);
    expect(results.filter((r) => r === 'IDENTITY_THROTTLED')).toHaveLength(10);
    f.clock.advance(10_000);
    expect(await outcome(tight.attempt({ account: 'customer:late', ip: '192.0.2.200' }))).toBe('ok');
  });

  it('one address hammering sign-in is stopped by its own budget and cannot spend the global one (another address still signs in)', async () => {
    const tight = createLockout({
      counters: backend.counters(),
      clock: f.clock,
      key: f.keys.throttleMac,
      policy: {
        ip: { limit: 5, windowMs: 600_000, blockMs: 60_000, backoff: 2, maxBlockMs: 3_600_000 },
        global: { limit: 20, windowMs: 60_000, blockMs: 10_000, backoff: 2, maxBlockMs: 300_000 },
      },
    });
    const hammer = await Promise.all(
      Array.from({ length: 60 }, (_, i) => outcome(tight.attempt({ account: `customer:${i}`, ip: '198.51.100.66' }))),
    );
    expect(hammer.filter((r) => r === 'ok')).toHaveLength(5);
    expect(hammer.filter((r) => r === 'IDENTITY_THROTTLED')).toHaveLength(55);
    // 5 admitted attempts spent 5 of the 20 global units: the rest of the world signs in.
    const others = await Promise.all(
      Array.from({ length: 15 }, (_, i) => outcome(tight.attempt({ account: `customer:other${i}`, ip: `203.0.113.${i + 1}` }))),
    );
    expect(others).toEqual(Array(15).fill('ok'));
  });

  it('failed authentications from one address (IPv6 by /64) end in 429, remembered before any credential is checked; other addresses unaffected', async () => {
    const policy = { limit: 3, windowMs: 900_000, blockMs: 60_000, backoff: 2, maxBlockMs: 3_600_000 };
    const make = () => createAuthFailureThrottle({ counters: backend.counters(), clock: f.clock, key: f.keys.throttleMac, policy });
    const failures = make();
    const results = [];
    for (let i = 0; i < 5; i++) results.push(await outcome(failures.failed(`2001:db8:5:6::${i + 1}`)));
    expect(results).toEqual(['ok', 'ok', 'ok', 'IDENTITY_AUTH_THROTTLED', 'IDENTITY_AUTH_THROTTLED']);
    expect(await outcome(Promise.resolve().then(() => failures.admit('2001:db8:5:6:ffff::1')))).toBe('IDENTITY_AUTH_THROTTLED');
    expect(await outcome(Promise.resolve().then(() => failures.admit('2001:db8:5:7::1')))).toBe('ok');
    // Another process shares the counters: it does not know of the block yet, and learns of it at the next failure.
    const other = make();
    expect(await outcome(Promise.resolve().then(() => other.admit('2001:db8:5:6::1')))).toBe('ok');
    expect(await outcome(other.failed('2001:db8:5:6::1'))).toBe('IDENTITY_AUTH_THROTTLED');
    expect(await outcome(Promise.resolve().then(() => other.admit('2001:db8:5:6::1')))).toBe('IDENTITY_AUTH_THROTTLED');
    f.clock.advance(60_000);
    expect(await outcome(Promise.resolve().then(() => failures.admit('2001:db8:5:6::1')))).toBe('ok');
    expect(await outcome(failures.failed('2001:db8:5:6::1'))).toBe('ok');
    expect(failures.policyOf('f:abc')).toEqual(policy);
    expect(failures.policyOf('i:abc')).toBeUndefined();
  });

  it('sweeping keeps a failed-authentication bucket for its whole window: a sweep cannot refill an address’s budget', async () => {
    const policy = { limit: 3, windowMs: 900_000, blockMs: 60_000, backoff: 2, maxBlockMs: 3_600_000 };
    const failures = createAuthFailureThrottle({ counters: backend.counters(), clock: f.clock, key: f.keys.throttleMac, policy });
    await failures.failed('203.0.113.50');
    await failures.failed('203.0.113.50');
    f.clock.advance(5 * 60_000);
    await lockout.sweep((k) => failures.policyOf(k));
    await failures.failed('203.0.113.50');
    expect(await outcome(failures.failed('203.0.113.50'))).toBe('IDENTITY_AUTH_THROTTLED');
  });

  it('stores neither identifiers nor addresses', async () => {
    await lockout.attempt({ account: 'customer:someone@example.com', ip: '203.0.113.99' });
    const stored = await backend.raw();
    expect(stored).not.toContain('someone');
    expect(stored).not.toContain('203.0.113');
  });

  it('behaves exactly like the shared rule, step by step', async () => {
    const counters = backend.counters();
    const policy: BucketPolicy = { limit: 3, windowMs: 5_000, blockMs: 2_000, backoff: 2, maxBlockMs: 9_000 };
    await fc.assert(
      fc.asyncProperty(fc.array(fc.tuple(fc.integer({ min: 0, max: 4_000 }), fc.integer({ min: 0, max: 1 })), { maxLength: 25 }), async (steps) => {
        const run = randomBytes(4).toString('hex');
        const model = new Map<number, BucketState>();
        let now = 1_700_000_000_000;
        for (const [dt, k] of steps) {
          now += dt;
          const expected = hit(model.get(k), now, policy);
          if (expected.allowed) model.set(k, expected.state);
          const actual = await counters.hit(`t:${run}:${k}`, policy, now);
          expect(actual).toEqual(expected);
        }
      }),
      { numRuns: 15 },
    );
  });
});

describe('lockout and password reset', () => {
  it('reset links keep working while the identifier is locked, and the reset clears the lock', async () => {
    const lockout = createLockout({ counters: createDatabaseCounters({ db: f.db }), clock: f.clock, key: f.keys.throttleMac });
    const tokens = createTokenService({ db: f.db, clock: f.clock, key: f.keys.tokenMac });
    const account = await f.account({ password: 'violet umbrella sings' });
    const key = f.accounts.lockoutKey('customer', account.email);
    for (let i = 0; i < 10; i++) await lockout.attempt({ account: key });
    expect(await outcome(lockout.attempt({ account: key }))).toBe('IDENTITY_ACCOUNT_LOCKED');
    const link = await tokens.issue(account.id, 'reset_password');
    const { accountId } = await tokens.consume('reset_password', link.token);
    await f.accounts.setPassword(accountId, new Secret('tangerine kiwi mango'));
    await lockout.clear(key);
    expect(await outcome(lockout.attempt({ account: key }))).toBe('ok');
    expect((await f.accounts.authenticate({ realm: 'customer', email: account.email, password: new Secret('tangerine kiwi mango') }))?.id).toBe(
      account.id,
    );
  });

  it('an unknown email locks exactly like a known one (ASVS 6.3.8)', async () => {
    const lockout = createLockout({ counters: createDatabaseCounters({ db: f.db }), clock: f.clock, key: f.keys.throttleMac });
    const known = await f.account({ password: 'violet umbrella sings' });
    for (const email of [known.email, 'nobody-here@example.com']) {
      const key = f.accounts.lockoutKey('customer', email);
      for (let i = 0; i < 10; i++) await lockout.attempt({ account: key });
      const error = await lockout.attempt({ account: key }).catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'IDENTITY_ACCOUNT_LOCKED', details: { retry_after_seconds: 1800 } });
    }
  });

  it('the database backend sweeps buckets with nothing left to remember', async () => {
    const lockout = createLockout({ counters: createDatabaseCounters({ db: f.db }), clock: f.clock, key: f.keys.throttleMac });
    await lockout.attempt({ account: 'customer:a', ip: '192.0.2.1' });
    expect(await lockout.sweep()).toBe(0);
    f.clock.advance(25 * 3_600_000);
    expect(await lockout.sweep()).toBe(3);
    expect(await f.db.selectFrom('identity_throttles').selectAll().execute()).toHaveLength(0);
  });
});

describe('lockout on Redis across processes', () => {
  it('two clients share one budget: exactly 10 of 50 parallel attempts pass', async () => {
    const a = createLockout({ counters: createRedisCounters({ redis: redisClient(), prefix }), clock: f.clock, key: f.keys.throttleMac });
    const b = createLockout({ counters: createRedisCounters({ redis: redisClient(), prefix }), clock: f.clock, key: f.keys.throttleMac });
    const results = await Promise.all(
      Array.from({ length: 50 }, (_, i) => outcome((i % 2 === 0 ? a : b).attempt({ account: 'customer:shared', ip: `192.0.2.${i}` }))),
    );
    expect(results.filter((r) => r === 'ok')).toHaveLength(10);
    expect(results.filter((r) => r === 'IDENTITY_ACCOUNT_LOCKED')).toHaveLength(40);
    expect(await b.status('customer:shared')).toMatchObject({ locked: true });
    await a.clear('customer:shared');
    expect(await outcome(b.attempt({ account: 'customer:shared' }))).toBe('ok');
  });

  it('keys expire by themselves once nothing is left to remember', async () => {
    const redis = redisClient();
    const lockout = createLockout({ counters: createRedisCounters({ redis, prefix }), clock: f.clock, key: f.keys.throttleMac });
    await lockout.attempt({ account: 'customer:a' });
    const keys = await redis.keys(`${prefix}*`);
    expect(keys.length).toBe(2);
    for (const k of keys) {
      const ttl = await redis.pttl(k);
      expect(ttl).toBeGreaterThan(0);
      expect(ttl).toBeLessThanOrEqual(24 * 3_600_000);
    }
  });
});
