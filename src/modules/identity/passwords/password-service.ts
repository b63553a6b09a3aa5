import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { hash as argon2Hash, parseOptions, verify as argon2Verify, type Algorithm } from '@node-rs/argon2';
import { z } from 'zod';
import { fail } from '../../../kernel/errors.ts';
import type { Secret } from '../../../kernel/secret.ts';
import { IdentityErrors } from '../errors.ts';
import {
  contextWords,
  minimumLength,
  normalisePassword,
  passwordLength,
  PasswordPolicySchema,
  refusal,
  type PasswordPolicyInput,
  type Realm,
} from './password-policy.ts';
import type { PasswordStrength } from './password-strength.ts';
import { createSemaphore } from './semaphore.ts';
import { createStrengthEstimator, type StrengthEstimator } from './strength-estimator.ts';

/**
 * Password hashing and checking. argon2id at m=19 MiB, t=2, p=1 by default (OWASP Password Storage
 * Cheat Sheet; ASVS 11.4.2), stored as a PHC string carrying its own parameters so that a change
 * of parameters needs no schema change: `verify` says `needsRehash` and sign-in rehashes. Hashing
 * runs behind a bounded semaphore (IDENTITY_BUSY when its queue is full). Unknown accounts are
 * checked against a dummy hash of the same parameters, so "no such account" costs what "wrong
 * password" costs (ASVS 6.3.8).
 */
export interface PasswordContext {
  readonly realm: Realm;
  /** True when the account has a second factor on: the shorter NIST minimum applies. */
  readonly secondFactor: boolean;
  /** The account's email: its name may not appear in the password. */
  readonly email?: string | undefined;
  /** More words to refuse for this account (its customer's name, say). */
  readonly contextWords?: readonly string[] | undefined;
}

export interface PasswordEvaluation {
  readonly acceptable: boolean;
  /** The error code the password would be refused with, and its limit if any. */
  readonly refusal: { readonly code: string; readonly details?: Record<string, unknown> } | undefined;
  readonly strength: PasswordStrength;
}

export interface PasswordVerification {
  readonly valid: boolean;
  /** The stored hash was made with other parameters: hash the password again and store it. */
  readonly needsRehash: boolean;
}

export interface PasswordService {
  /** For the UI while typing: whether it would be accepted, and how strong it is. Never throws for the password. */
  evaluate(password: Secret<string>, ctx: PasswordContext): Promise<PasswordEvaluation>;
  /** Checks a new password against the policy (throws its refusal) and hashes it. */
  hashNew(password: Secret<string>, ctx: PasswordContext): Promise<{ hash: string; strength: PasswordStrength }>;
  /** Hashes without the policy: only for rehash-on-sign-in of a password that just verified. */
  rehash(password: Secret<string>): Promise<string>;
  /** `stored` undefined/null (unknown account, passkey-only account): checked against the dummy hash, always invalid. */
  verify(stored: string | null | undefined, password: Secret<string>): Promise<PasswordVerification>;
  needsRehash(stored: string): boolean;
  minimumLength(realm: Realm, secondFactor: boolean): number;
  close(): Promise<void>;
}

export const HashingSchema = z.object({
  memoryCost: z.number().int().min(19_456).default(19_456),
  timeCost: z.number().int().min(2).default(2),
  parallelism: z.number().int().min(1).max(16).default(1),
});

/** libuv's thread pool has 4 threads by default; leave one for file and crypto work of the vault. */
export function defaultHashConcurrency(): number {
  return Math.max(1, Math.min(availableParallelism(), 4) - 1);
}

const ARGON2ID = 2 as Algorithm;
const OUTPUT_LEN = 32;

export function createPasswordService(
  deps: {
    policy?: PasswordPolicyInput;
    hashing?: z.input<typeof HashingSchema>;
    concurrency?: { max?: number; queue?: number };
    estimator?: StrengthEstimator;
  } = {},
): PasswordService {
  const policy = PasswordPolicySchema.parse(deps.policy ?? {});
  const params = HashingSchema.parse(deps.hashing ?? {});
  const max = deps.concurrency?.max ?? defaultHashConcurrency();
  const gate = createSemaphore({ max, queue: deps.concurrency?.queue ?? max * 32 });
  const estimator = deps.estimator ?? createStrengthEstimator();
  const ownsEstimator = deps.estimator === undefined;
  const options = { ...params, algorithm: ARGON2ID, outputLen: OUTPUT_LEN };
  // Longest input worth hashing at sign-in: anything longer cannot be a stored password.
  const verifyLimit = policy.maxLength * 4;

  let dummy: Promise<string> | undefined;
  const dummyHash = () => {
    dummy ??= gate.run(() => argon2Hash(randomBytes(32), options)).catch((error: unknown) => {
      dummy = undefined;
      throw error;
    });
    return dummy;
  };

  // Made now, so that the first unknown account costs what every later one costs.
  dummyHash().catch(() => undefined);

  function normalised(password: Secret<string>): string {
    const n = normalisePassword(password.reveal());
    if (n === undefined) fail(IdentityErrors.IDENTITY_PASSWORD_MALFORMED, 'the password is not well-formed Unicode text');
    return n;
  }

  const inputs = (ctx: PasswordContext) => contextWords(policy, ctx.email, ctx.contextWords);

  async function strengthOf(n: string, words: readonly string[]): Promise<PasswordStrength> {
    return estimator.estimate(n, words);
  }

  function needsRehash(stored: string): boolean {
    try {
      const p = parseOptions(stored);
      return (
        p.algorithm !== ARGON2ID ||
        p.version !== 1 ||
        p.memoryCost !== params.memoryCost ||
        p.timeCost !== params.timeCost ||
        p.parallelism !== params.parallelism ||
        p.outputLen !== OUTPUT_LEN
      );
    } catch {
      return true;
    }
  }

  return {
    async evaluate(password, ctx) {
      const n = normalised(password);
      const words = inputs(ctx);
      const refused = refusal(policy, n, { realm: ctx.realm, secondFactor: ctx.secondFactor, words });
      const strength = await strengthOf(n, words);
      return {
        acceptable: refused === undefined,
        refusal: refused === undefined ? undefined : { code: refused.spec.code, ...(refused.details ? { details: refused.details } : {}) },
        strength,
      };
    },

    async hashNew(password, ctx) {
      const n = normalised(password);
      const words = inputs(ctx);
      const refused = refusal(policy, n, { realm: ctx.realm, secondFactor: ctx.secondFactor, words });
      if (refused !== undefined) fail(refused.spec, refused.message, refused.details);
      const strength = await strengthOf(n, words);
      const hash = await gate.run(() => argon2Hash(n, options));
      return { hash, strength };
    },

    async rehash(password) {
      const n = normalised(password);
      return gate.run(() => argon2Hash(n, options));
    },

    async verify(stored, password) {
      const n = normalisePassword(password.reveal());
      const candidate = n !== undefined && passwordLength(n) <= verifyLimit ? n : undefined;
      if (stored === undefined || stored === null || candidate === undefined) {
        const d = await dummyHash();
        await gate.run(() => argon2Verify(d, candidate ?? '').catch(() => false));
        return { valid: false, needsRehash: false };
      }
      const valid = await gate.run(() => argon2Verify(stored, candidate).catch(() => false));
      return { valid, needsRehash: valid && needsRehash(stored) };
    },

    needsRehash,

    minimumLength: (realm, secondFactor) => minimumLength(policy, realm, secondFactor),

    async close() {
      if (ownsEstimator) await estimator.close();
    },
  };
}
