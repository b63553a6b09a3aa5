import { createHmac, type KeyObject } from 'node:crypto';
import type { Clock } from '../../../kernel/clock.ts';
import { fail } from '../../../kernel/errors.ts';
import { IdentityErrors } from '../errors.ts';
import { throttleSubject } from './client-address.ts';
import type { BucketPolicy, CounterStore } from './throttle-policy.ts';

/**
 * A budget of failed authentications per client address (IPv6 by /64, like the sign-in budget):
 * a request whose API key, bearer token or session cookie is not accepted spends one unit of its
 * address's bucket, whichever key id or session it named, so guessing or replaying credentials
 * from one address ends in 429 and can never spend the budget of the key it names (OWASP
 * Credential Stuffing Prevention Cheat Sheet; ASVS 2.4.1 anti-automation). Counted in the shared
 * attempt counters (Redis with REDIS_URL, the database otherwise); keys are HMACs, so addresses are
 * not stored.
 *
 * `admit` runs before any credential is looked at. It refuses an address this process has seen
 * blocked, from memory, so that a blocked address learns nothing from a right guess and a valid
 * request costs no counter round trip; another process learns of a block at the first failure it
 * counts from that address.
 */
export interface FailureBudget {
  /** Refuses (IDENTITY_AUTH_THROTTLED) an address known to be blocked, before its credentials are checked. */
  admit(ip: string): void;
  /** Counts one failed authentication; refuses once the address has spent its budget. */
  failed(ip: string): Promise<void>;
}

export interface AuthFailureThrottle extends FailureBudget {
  /** The policy of a counter key of this throttle (for sweeping), undefined for other keys. */
  policyOf(key: string): BucketPolicy | undefined;
}

export const AUTH_FAILURE_WINDOW_MS = 15 * 60_000;

/** Most blocked addresses remembered at once; beyond that, the oldest are forgotten (they are still counted). */
const REMEMBERED = 10_000;

export function createAuthFailureThrottle(deps: { counters: CounterStore; clock: Clock; key: KeyObject; policy: BucketPolicy }): AuthFailureThrottle {
  const { counters, clock, key, policy } = deps;
  const blocked = new Map<string, number>();
  const counterKey = (subject: string) => `f:${createHmac('sha256', key).update(`f\u0000${subject}`, 'utf8').digest('base64url')}`;

  const refuse = (untilMs: number, now: number): never =>
    fail(IdentityErrors.IDENTITY_AUTH_THROTTLED, 'too many requests with a credential that was not accepted from this address; try again later', {
      retry_after_seconds: Math.max(1, Math.ceil((untilMs - now) / 1000)),
    });

  function remember(subject: string, until: number, now: number): void {
    if (blocked.size >= REMEMBERED) {
      for (const [s, u] of blocked) if (u <= now) blocked.delete(s);
      const oldest = blocked.keys().next();
      if (blocked.size >= REMEMBERED && oldest.done !== true) blocked.delete(oldest.value);
    }
    blocked.set(subject, until);
  }

  return {
    admit(ip) {
      if (blocked.size === 0) return;
      const subject = throttleSubject(ip);
      const until = blocked.get(subject);
      if (until === undefined) return;
      const now = clock.now().getTime();
      if (until > now) refuse(until, now);
      blocked.delete(subject);
    },

    async failed(ip) {
      const subject = throttleSubject(ip);
      const now = clock.now().getTime();
      const result = await counters.hit(counterKey(subject), policy, now);
      if (!result.allowed) {
        remember(subject, now + result.retryAfterMs, now);
        return refuse(now + result.retryAfterMs, now);
      }
      if (result.state.blockedUntil > now) remember(subject, result.state.blockedUntil, now);
    },

    policyOf: (k) => (k.startsWith('f:') ? policy : undefined),
  };
}
