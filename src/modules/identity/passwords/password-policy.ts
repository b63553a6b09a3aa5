import { z } from 'zod';
import type { ErrorSpec } from '../../../kernel/errors.ts';
import { isCommonPassword } from './common-passwords.ts';
import { IdentityErrors } from '../errors.ts';

/**
 * What a new password must be, and nothing more (NIST SP 800-63B rev 4 §3.1.1.2, ASVS 5.0 V6.2):
 * long enough, not too long, not common or breached, not built from the account's own name or the
 * shop's. No composition rules and no forced periodic change (ASVS 6.2.5, 6.2.10).
 */
export type Realm = 'customer' | 'staff';

export const PasswordPolicySchema = z.object({
  minLength: z
    .object({
      /** NIST SP 800-63B §3.1.1.2, ASVS 6.2.1: 15 while the password is the only factor. */
      singleFactor: z.number().int().min(8).default(15),
      /** NIST SP 800-63B §3.1.1.2: 8 once a second factor is on. */
      withSecondFactor: z.number().int().min(8).default(8),
      /** PCI DSS 4.0.1 8.3.6: staff at least 12 (and the single-factor rule still applies). */
      staff: z.number().int().min(12).default(12),
    })
    .prefault({}),
  /** Longest accepted, in characters after NFKC; at least 64 (ASVS 6.2.9). Longer is refused, never truncated. */
  maxLength: z.number().int().min(64).max(1024).default(256),
  /** Words a password must not contain, such as the shop's name (ASVS 6.2.12). */
  contextWords: z.array(z.string()).default([]),
});
export type PasswordPolicy = z.output<typeof PasswordPolicySchema>;
export type PasswordPolicyInput = z.input<typeof PasswordPolicySchema>;

/** Context words shorter than this are ignored: "contains `al`" would refuse half of all passwords. */
export const MIN_CONTEXT_WORD = 4;

/**
 * NFKC, so that the same password typed on two keyboards (full-width letters, ligatures, composed
 * or decomposed accents) is one password (NIST SP 800-63B §3.1.1.2, ASVS 6.2.9). Returns undefined
 * for text that is not well-formed Unicode (lone surrogates), which would otherwise collapse to
 * U+FFFD and make distinct passwords equal.
 */
export function normalisePassword(raw: string): string | undefined {
  if (!raw.isWellFormed()) return undefined;
  return raw.normalize('NFKC');
}

/** Characters as people count them: Unicode code points. */
export function passwordLength(normalised: string): number {
  return Array.from(normalised).length;
}

/** The minimum for this account: staff get the stricter of PCI DSS 8.3.6 and the NIST rule. */
export function minimumLength(policy: PasswordPolicy, realm: Realm, secondFactor: boolean): number {
  const nist = secondFactor ? policy.minLength.withSecondFactor : policy.minLength.singleFactor;
  return realm === 'staff' ? Math.max(policy.minLength.staff, nist) : nist;
}

const compact = (s: string) => s.normalize('NFKC').toLowerCase().replace(/[^\p{L}\p{N}]/gu, '');

/** The words a password of this account must not contain: the email's name and its parts, plus the policy's. */
export function contextWords(policy: PasswordPolicy, email: string | undefined, extra: readonly string[] = []): string[] {
  const words = [...policy.contextWords, ...extra];
  if (email !== undefined) {
    const local = email.split('@')[0] ?? '';
    words.push(local, ...local.split(/[._+-]+/));
  }
  return [...new Set(words.map(compact))].filter((w) => passwordLength(w) >= MIN_CONTEXT_WORD);
}

export interface PasswordRefusal {
  readonly spec: ErrorSpec;
  readonly message: string;
  readonly details?: Record<string, unknown>;
}

/** The first rule a new (already normalised) password breaks, or undefined when it is acceptable. */
export function refusal(
  policy: PasswordPolicy,
  normalised: string,
  ctx: { realm: Realm; secondFactor: boolean; words: readonly string[] },
): PasswordRefusal | undefined {
  const length = passwordLength(normalised);
  const minimum = minimumLength(policy, ctx.realm, ctx.secondFactor);
  if (length < minimum)
    return { spec: IdentityErrors.IDENTITY_PASSWORD_TOO_SHORT, message: `the password must be at least ${minimum} characters`, details: { minimum } };
  if (length > policy.maxLength)
    return {
      spec: IdentityErrors.IDENTITY_PASSWORD_TOO_LONG,
      message: `the password must be at most ${policy.maxLength} characters`,
      details: { maximum: policy.maxLength },
    };
  if (isCommonPassword(normalised))
    return { spec: IdentityErrors.IDENTITY_PASSWORD_BREACHED, message: 'the password is on the list of common and breached passwords' };
  const flat = compact(normalised);
  if (ctx.words.some((w) => flat.includes(w)))
    return { spec: IdentityErrors.IDENTITY_PASSWORD_CONTEXT, message: "the password contains the account's email name or the shop's name" };
  return undefined;
}
