import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { expandIPv6, throttleSubject } from './client-address.ts';
import { blockDuration, hit, type BucketPolicy, type BucketState } from './throttle-policy.ts';

const policy: BucketPolicy = { limit: 3, windowMs: 10_000, blockMs: 1_000, backoff: 2, maxBlockMs: 5_000 };

describe('the bucket rule', () => {
  it('lets `limit` attempts through, then blocks with growing, capped durations', () => {
    let s: BucketState | undefined;
    let now = 0;
    const step = () => {
      const r = hit(s, now, policy);
      if (r.allowed) s = r.state;
      return r;
    };
    expect([step(), step(), step()].map((r) => r.allowed && r.remaining)).toEqual([2, 1, 0]);
    expect(step()).toEqual({ allowed: false, retryAfterMs: 1_000 });
    now += 1_000;
    step();
    step();
    step();
    expect(step()).toEqual({ allowed: false, retryAfterMs: 2_000 });
    now += 2_000;
    for (let i = 0; i < 3; i++) step();
    expect(step()).toEqual({ allowed: false, retryAfterMs: 4_000 });
    now += 4_000;
    for (let i = 0; i < 3; i++) step();
    expect(step()).toEqual({ allowed: false, retryAfterMs: 5_000 }); // capped
    expect(blockDuration(policy, 10)).toBe(5_000);
  });

  it('forgets strikes after a quiet window and counts afresh after the window', () => {
    let s: BucketState | undefined;
    let now = 0;
    for (let i = 0; i < 3; i++) {
      const r = hit(s, now, policy);
      if (r.allowed) s = r.state;
    }
    now += 1_000 + policy.windowMs; // the block ended a full window ago
    const r = hit(s, now, policy);
    expect(r.allowed && r.state).toEqual({ count: 1, windowStart: now, blockedUntil: 1_000, strikes: 0 });
  });

  it('never lets more than `limit` attempts through within one window, whatever the timing', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 3_000 }), { maxLength: 60 }), (gaps) => {
        let s: BucketState | undefined;
        let now = 0;
        const passed: number[] = [];
        for (const gap of gaps) {
          now += gap;
          const r = hit(s, now, policy);
          if (r.allowed) {
            s = r.state;
            passed.push(now);
          }
        }
        // Any `limit + 1` passed attempts span at least the first block (blockMs).
        for (let i = policy.limit; i < passed.length; i++) {
          if (passed[i]! - passed[i - policy.limit]! < policy.blockMs) return false;
        }
        return true;
      }),
      { numRuns: 500 },
    );
  });
});

describe('client address subject', () => {
  it('keeps IPv4, unwraps IPv4-mapped IPv6, and takes the /64 of IPv6', () => {
    expect(throttleSubject('203.0.113.7')).toBe('203.0.113.7');
    expect(throttleSubject('::ffff:203.0.113.7')).toBe('203.0.113.7');
    expect(throttleSubject('::FFFF:cb00:7107')).toBe('203.0.113.7');
    expect(throttleSubject('2001:db8:1:2::1')).toBe('2001:db8:1:2::/64');
    expect(throttleSubject('2001:0DB8:0001:0002:aaaa:bbbb:cccc:dddd')).toBe('2001:db8:1:2::/64');
    expect(throttleSubject('fe80::1%eth0')).toBe('fe80:0:0:0::/64');
    expect(throttleSubject('not an address')).toBe('other:not an address');
    // ::ffff:0:0 is the IPv4-mapped 0.0.0.0, not an address of ::/64
    expect(throttleSubject('0:0:0:0:0:ffff:0:0')).toBe('0.0.0.0');
    expect(throttleSubject('0:0:0:0:0:fffe:0:0')).toBe('0:0:0:0::/64');
  });

  it('gives every spelling of an IPv6 address, and every address of one /64, the same subject', () => {
    fc.assert(
      fc.property(fc.ipV6(), fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 4, maxLength: 4 }), (ip, low) => {
        const canonical = new URL(`http://[${ip}]/`).hostname.slice(1, -1);
        const groups = expandIPv6(ip);
        expect(groups).toHaveLength(8);
        expect(expandIPv6(canonical)).toEqual(groups);
        expect(throttleSubject(ip)).toBe(throttleSubject(canonical));
        // IPv4-mapped addresses (::ffff:0:0/96) lie inside ::/64 but are subjects of their own, as
        // IPv4; neither the address nor its sibling may be one for the /64 rule to apply.
        const isMapped = (g: number[]) => g.slice(0, 6).every((v, i) => v === (i === 5 ? 0xffff : 0));
        const siblingGroups = [...groups.slice(0, 4), ...low];
        if (!isMapped(groups) && !isMapped(siblingGroups)) {
          const sibling = siblingGroups.map((g) => g.toString(16)).join(':');
          expect(throttleSubject(sibling)).toBe(throttleSubject(ip));
        }
      }),
      { numRuns: 1000 },
    );
  });

  it('maps IPv4 addresses and their IPv4-mapped forms together', () => {
    fc.assert(
      fc.property(fc.ipV4(), (ip) => throttleSubject(`::ffff:${ip}`) === throttleSubject(ip) && throttleSubject(ip) === ip),
    );
  });
});
