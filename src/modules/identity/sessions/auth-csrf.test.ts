import type { FastifyRequest } from 'fastify';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { checkOrigin, originVerdict } from '../../../http/csrf.ts';
import { readCookie } from '../../../http/session.ts';
import { AppError } from '../../../kernel/errors.ts';
import { deviceLabel } from './session-device.ts';

/**
 * The parsers at the edge of a session, tried with arbitrary input (fast-check): the origin check
 * only ever lets this service's own origins through, a cookie header yields exactly the value of
 * our cookie (and never another cookie's value), and the device label is always one of a few
 * coarse strings whatever the User-Agent says.
 */
const PUBLIC = 'https://shop.example';
const request = (headers: Record<string, string>, method = 'POST') =>
  ({ headers, method, protocol: 'https', host: 'custos.shop.example' }) as unknown as FastifyRequest;

describe('origin check (CSRF)', () => {
  it('accepts the public origin and the request’s own origin, in any spelling a browser may use', () => {
    for (const origin of [PUBLIC, 'https://SHOP.example', 'https://shop.example:443', 'https://custos.shop.example'])
      expect(originVerdict(request({ origin }), PUBLIC)).toBe('same');
    expect(originVerdict(request({ 'sec-fetch-site': 'same-origin' }), PUBLIC)).toBe('same');
  });

  it('refuses every other origin (property)', () => {
    fc.assert(
      fc.property(fc.oneof(fc.webUrl(), fc.string({ maxLength: 80 })), (origin) => {
        let normalised: string | undefined;
        try {
          normalised = new URL(origin).origin;
        } catch {
          normalised = undefined;
        }
        fc.pre(origin !== '' && normalised !== PUBLIC && normalised !== 'https://custos.shop.example');
        expect(originVerdict(request({ origin }), PUBLIC)).toBe('cross');
        expect(() => checkOrigin(request({ origin }), { publicOrigin: PUBLIC, requireEvidence: false })).toThrow(AppError);
      }),
      { numRuns: 500 },
    );
  });

  it('refuses a cookie-borne request without evidence, lets a cookieless one without evidence through, and never checks GET', () => {
    expect(() => checkOrigin(request({}), { publicOrigin: PUBLIC, requireEvidence: true })).toThrow(/cross-origin/);
    expect(() => checkOrigin(request({}), { publicOrigin: PUBLIC, requireEvidence: false })).not.toThrow();
    expect(() => checkOrigin(request({ origin: 'https://evil.example' }, 'GET'), { publicOrigin: PUBLIC, requireEvidence: true })).not.toThrow();
    for (const site of ['cross-site', 'same-site', 'bogus']) expect(originVerdict(request({ 'sec-fetch-site': site }), PUBLIC)).toBe('cross');
    // Origin wins over Sec-Fetch-Site: a forged-looking pair is judged by the Origin.
    expect(originVerdict(request({ origin: 'https://evil.example', 'sec-fetch-site': 'same-origin' }), PUBLIC)).toBe('cross');
  });
});

describe('cookie header parsing', () => {
  const name = '__Host-custos_session';
  const cookieName = fc.stringMatching(/^[A-Za-z0-9_-]{1,20}$/).filter((n) => n !== name);
  const cookieValue = fc.stringMatching(/^[A-Za-z0-9_.-]{0,60}$/);

  it('finds our cookie among others, in any order, and nothing when it is absent (property)', () => {
    fc.assert(
      fc.property(fc.array(fc.tuple(cookieName, cookieValue), { maxLength: 8 }), cookieValue, fc.nat(8), fc.boolean(), (others, ours, at, present) => {
        const pairs = others.map(([k, v]) => `${k}=${v}`);
        if (present) pairs.splice(Math.min(at, pairs.length), 0, `${name}=${ours}`);
        const found = readCookie(request({ cookie: pairs.join('; ') }), name);
        expect(found).toBe(present ? ours : undefined);
      }),
    );
  });

  it('never throws on arbitrary headers', () => {
    fc.assert(fc.property(fc.string({ maxLength: 300 }), (header) => void readCookie(request({ cookie: header }), name)));
    expect(readCookie(request({ cookie: `${name}=${'x'.repeat(9000)}` }), name)).toBeUndefined();
  });
});

describe('device label', () => {
  it('is one of a few coarse labels whatever the User-Agent (property)', () => {
    fc.assert(
      fc.property(fc.string({ maxLength: 600 }), (ua) => {
        expect(deviceLabel(ua)).toMatch(/^(Unknown device|[A-Za-z. ]{2,20})$/);
        expect(deviceLabel(ua).length).toBeLessThanOrEqual(30);
      }),
    );
    expect(deviceLabel('Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1')).toBe('Safari on iOS');
    expect(deviceLabel('Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0 Safari/537.36 Edg/124.0')).toBe('Edge on Windows');
    expect(deviceLabel(undefined)).toBe('Unknown device');
  });
});
