import { createHmac, type KeyObject } from 'node:crypto';
import type { Clock } from '../../../kernel/clock.ts';
import { fail } from '../../../kernel/errors.ts';
import { throttleSubject } from './client-address.ts';
import { IdentityErrors } from '../errors.ts';
import { LockoutPolicySchema, type BucketPolicy, type CounterStore, type LockoutPolicyInput } from './throttle-policy.ts';

/**
 * Sign-in attempt limits (PCI DSS 4.0.1 8.3.4; NIST SP 800-63B §3.2.2; OWASP Authentication and
 * Credential Stuffing Cheat Sheets). Three budgets, each counted before the password is checked so
 * that parallel guesses cannot overrun them:
 * - per identifier: 10 consecutive failures lock it for 30 minutes (by default). Keyed to what was
 *   typed, so unknown emails lock exactly like real ones (ASVS 6.3.8), and never to the IP;
 *   a success or a password reset clears it (`clear`). Password reset is not gated by it.
 * - per client address (IPv6 by /64): attempts per window, blocks growing with each repeat;
 * - global: a ceiling on attempts per window across the service, with backoff. Only attempts the
 *   address budget admitted count here, so refused attempts cannot spend it for everyone.
 * Keys are HMACs, so neither identifiers nor addresses are stored.
 *
 * Use: `await lockout.attempt({ account, ip })` → check the password → on success `clear(account)`.
 * `remaining` 0 means a failure of this attempt locks the identifier (`authn_login_lock`).
 */
export interface Lockout {
  attempt(input: { account: string; ip?: string | undefined }): Promise<{ remaining: number }>;
  clear(account: string): Promise<void>;
  /**
   * Locks the identifier now, as its last allowed failure would (detection's `lock_account`
   * response): sign-in is refused for the lock period; a password reset still clears it.
   */
  lock(account: string): Promise<void>;
  status(account: string): Promise<{ locked: boolean; until: string | undefined; attempts: number }>;
  /**
   * Forgets buckets with nothing left to remember (database backend; Redis expires them itself).
   * `others` names the policy of keys other throttles keep in the same counters.
   */
  sweep(others?: (key: string) => BucketPolicy | undefined): Promise<number>;
}

export function createLockout(deps: { counters: CounterStore; clock: Clock; key: KeyObject; policy?: LockoutPolicyInput }): Lockout {
  const { counters, clock, key } = deps;
  const policy = LockoutPolicySchema.parse(deps.policy ?? {});
  const mac = (kind: string, value: string) =>
    `${kind}:${createHmac('sha256', key).update(`${kind}\u0000${value}`, 'utf8').digest('base64url')}`;
  const accountKey = (account: string) => mac('a', account);
  const seconds = (ms: number) => Math.max(1, Math.ceil(ms / 1000));

  const policyOf = (k: string): BucketPolicy => (k.startsWith('a:') ? policy.account : k.startsWith('i:') ? policy.ip : policy.global);

  return {
    async attempt({ account, ip }) {
      const now = clock.now().getTime();
      // The address first: an attempt its own address refuses never reaches (nor spends) the
      // service-wide budget, so one address cannot throttle everyone else's sign-in.
      if (ip !== undefined) {
        const byIp = await counters.hit(mac('i', throttleSubject(ip)), policy.ip, now);
        if (!byIp.allowed)
          fail(IdentityErrors.IDENTITY_THROTTLED, 'too many sign-in attempts from this address; try again later', {
            retry_after_seconds: seconds(byIp.retryAfterMs),
          });
      }
      const global = await counters.hit('g:all', policy.global, now);
      if (!global.allowed)
        fail(IdentityErrors.IDENTITY_THROTTLED, 'too many sign-in attempts; try again later', {
          retry_after_seconds: seconds(global.retryAfterMs),
        });
      const byAccount = await counters.hit(accountKey(account), policy.account, now);
      if (!byAccount.allowed)
        fail(IdentityErrors.IDENTITY_ACCOUNT_LOCKED, 'too many failed sign-ins; the account is locked for a while', {
          retry_after_seconds: seconds(byAccount.retryAfterMs),
        });
      return { remaining: byAccount.remaining };
    },

    async clear(account) {
      await counters.clear(accountKey(account));
    },

    async lock(account) {
      const now = clock.now().getTime();
      const k = accountKey(account);
      for (let i = 0; i < policy.account.limit; i++) {
        const r = await counters.hit(k, policy.account, now);
        if (!r.allowed || r.state.blockedUntil > now) return;
      }
    },

    async status(account) {
      const state = await counters.peek(accountKey(account));
      const now = clock.now().getTime();
      if (state === undefined) return { locked: false, until: undefined, attempts: 0 };
      const locked = state.blockedUntil > now;
      // A finished block or an expired window starts over: nothing counts any more.
      const stale = !locked && (state.count >= policy.account.limit || now - state.windowStart >= policy.account.windowMs);
      return { locked, until: locked ? new Date(state.blockedUntil).toISOString() : undefined, attempts: stale ? 0 : state.count };
    },

    async sweep(others) {
      return counters.sweep === undefined ? 0 : counters.sweep(clock.now().getTime(), (k) => others?.(k) ?? policyOf(k));
    },
  };
}
