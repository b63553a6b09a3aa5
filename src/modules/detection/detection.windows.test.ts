import { randomBytes } from 'node:crypto';
import { writeFileSync, mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { loadRules, RulesError } from './rules.ts';
import { memoryWindows, redisWindows, type WindowStore } from './windows.ts';

/**
 * The sliding windows the rules count in, in memory and in Redis, held to the same answers: a
 * member seen again counts once, members and counts leave the window when it slides past them,
 * and two stores on one Redis prefix (two server processes) see each other's additions. And the
 * rules file: defaults, overrides key by key, and a bad key named.
 */
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
const redis = new Redis(REDIS_URL, { maxRetriesPerRequest: 1 });
afterAll(async () => void (await redis.quit()));

const MIN = 60_000;

describe.each([
  ['memory', () => memoryWindows()],
  ['redis', () => redisWindows(redis, `custos:test:${randomBytes(6).toString('hex')}:`)],
] as const)('%s windows', (_name, make) => {
  it('counts distinct members within the window, and forgets them once it slides past', async () => {
    const w: WindowStore = make();
    const t0 = Date.UTC(2026, 0, 1, 12);
    expect(await w.apply([{ kind: 'distinct', key: 'cs:a', windowMs: 5 * MIN, members: ['x', 'y'] }], t0)).toEqual([2]);
    expect(await w.apply([{ kind: 'distinct', key: 'cs:a', windowMs: 5 * MIN, members: ['y', 'z'] }], t0 + MIN)).toEqual([3]);
    // x was last seen at t0: gone after five minutes; y and z stay.
    expect(await w.apply([{ kind: 'distinct', key: 'cs:a', windowMs: 5 * MIN, members: [] }], t0 + 5 * MIN + 1)).toEqual([2]);
    expect(await w.apply([{ kind: 'distinct', key: 'cs:b', windowMs: 5 * MIN, members: ['x'] }], t0 + 5 * MIN + 1)).toEqual([1]);
  });

  it('sums counts over the window in several ops of one batch, in order', async () => {
    const w = make();
    const t0 = Date.UTC(2026, 0, 1, 12);
    expect(
      await w.apply(
        [
          { kind: 'count', key: 'bf:k', windowMs: 10 * MIN, n: 3 },
          { kind: 'distinct', key: 'br:k', windowMs: 10 * MIN, members: ['c1'] },
          { kind: 'count', key: 'bf:j', windowMs: 10 * MIN, n: 1 },
        ],
        t0,
      ),
    ).toEqual([3, 1, 1]);
    expect(await w.apply([{ kind: 'count', key: 'bf:k', windowMs: 10 * MIN, n: 2 }], t0 + 4 * MIN)).toEqual([5]);
    expect(await w.apply([{ kind: 'count', key: 'bf:k', windowMs: 10 * MIN, n: 0 }], t0 + 11 * MIN)).toEqual([2]);
  });
});

describe('redis windows shared by two processes', () => {
  it('two stores on one prefix add to the same windows', async () => {
    const prefix = `custos:test:${randomBytes(6).toString('hex')}:`;
    const [a, b] = [redisWindows(redis, prefix), redisWindows(redis, prefix)];
    const t0 = Date.UTC(2026, 0, 1, 12);
    await a.apply([{ kind: 'distinct', key: 'cs:s', windowMs: 5 * MIN, members: ['1', '2'] }], t0);
    expect(await b.apply([{ kind: 'distinct', key: 'cs:s', windowMs: 5 * MIN, members: ['2', '3'] }], t0 + 1)).toEqual([3]);
    await a.apply([{ kind: 'count', key: 'g', windowMs: 5 * MIN, n: 4 }], t0);
    expect(await b.apply([{ kind: 'count', key: 'g', windowMs: 5 * MIN, n: 1 }], t0 + 1)).toEqual([5]);
  });
});

describe('rules file', () => {
  const file = (text: string) => {
    const path = join(mkdtempSync(join(tmpdir(), 'custos-rules-')), 'rules.yaml');
    writeFileSync(path, text);
    return path;
  };

  it('ships static defaults (20 accounts from one source in 5 minutes) and keeps every default the file leaves out', () => {
    const defaults = loadRules(undefined);
    expect(defaults.rules.credential_stuffing).toMatchObject({ accounts: 20, window: 5 * MIN, responses: ['alert', 'block_source'], block_for: 60 * MIN });
    expect(defaults.history).toBe(30 * 24 * 60 * MIN);
    const custom = loadRules(file('rules:\n  credential_stuffing: { accounts: 50, alert_only: true }\n  honeytoken: { responses: [alert, lock_apikey] }\n'));
    expect(custom.rules.credential_stuffing).toMatchObject({ accounts: 50, alert_only: true, window: 5 * MIN, responses: ['alert', 'block_source'] });
    expect(custom.rules.honeytoken).toMatchObject({ severity: 'critical', responses: ['alert', 'lock_apikey'] });
    expect(custom.rules.bulk_read).toEqual(defaults.rules.bulk_read);
    expect(loadRules(file('{"rules": {"bulk_read": {"window": "10m"}}}')).rules.bulk_read.window).toBe(10 * MIN);
  });

  it.each([
    ['rules:\n  bulk_reads: {}\n', 'rules'],
    ['rules:\n  bulk_read: { window: 10 minutes }\n', 'rules.bulk_read.window'],
    ['rules:\n  honeytoken: { responses: [alert, shout] }\n', 'rules.honeytoken.responses.1'],
    ['learning_period: -1\n', 'learning_period'],
    ['rules: [\n', '(cannot be read)'],
  ])('refuses %j naming %s', (text, where) => {
    let error: unknown;
    try {
      loadRules(file(text));
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(RulesError);
    expect((error as Error).message).toMatch(/^CUSTOS_DETECTION_RULES: /);
    if (where !== '(cannot be read)') expect((error as Error).message).toContain(`${where}:`);
  });
});
