import { hash as argon2Hash } from '@node-rs/argon2';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { AppError } from '../../../kernel/errors.ts';
import { Secret } from '../../../kernel/secret.ts';
import { commonPasswordCount, isCommonPassword } from './common-passwords.ts';
import { normalisePassword } from './password-policy.ts';
import { createPasswordService } from './password-service.ts';
import { createStrengthEstimator } from './strength-estimator.ts';

const s = (v: string) => new Secret(v);
const passwords = createPasswordService({ policy: { contextWords: ['Acme Outdoor'] } });
afterAll(() => passwords.close());

async function refusedWith(p: Promise<unknown>): Promise<string> {
  try {
    await p;
  } catch (error) {
    if (error instanceof AppError) return error.code;
    throw error;
  }
  return 'accepted';
}

const customer = { realm: 'customer', secondFactor: false, email: 'jane.doe@example.com' } as const;

describe('password policy (NIST SP 800-63B §3.1.1.2, ASVS 6.2)', () => {
  it('ships a blocklist of tens of thousands of common and breached passwords', () => {
    expect(commonPasswordCount()).toBeGreaterThan(40_000);
    expect(isCommonPassword('Password1')).toBe(true);
  });

  it('refuses a customer password under 15 characters while it is the only factor, 8 with a second factor', async () => {
    expect(await refusedWith(passwords.hashNew(s('tangerine-kiwi'), customer))).toBe('IDENTITY_PASSWORD_TOO_SHORT');
    expect(await refusedWith(passwords.hashNew(s('tangerine-kiwi!'), customer))).toBe('accepted');
    expect(await refusedWith(passwords.hashNew(s('tang-ki'), { ...customer, secondFactor: true }))).toBe('IDENTITY_PASSWORD_TOO_SHORT');
    expect(await refusedWith(passwords.hashNew(s('tang-kiw'), { ...customer, secondFactor: true }))).toBe('accepted');
  });

  it('gives staff the stricter of PCI DSS 8.3.6 (12) and the single-factor rule (15)', async () => {
    const staff = { realm: 'staff', secondFactor: true } as const;
    expect(passwords.minimumLength('staff', true)).toBe(12);
    expect(passwords.minimumLength('staff', false)).toBe(15);
    expect(await refusedWith(passwords.hashNew(s('rhubarb-pie'), staff))).toBe('IDENTITY_PASSWORD_TOO_SHORT');
    expect(await refusedWith(passwords.hashNew(s('rhubarb-pie!'), staff))).toBe('accepted');
    const error = await passwords.hashNew(s('rhubarb-pie'), staff).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(AppError);
    expect((error as AppError).details).toEqual({ minimum: 12 });
  });

  it('accepts 64 and 256 characters, refuses 257 with its own code, and never truncates', async () => {
    const p256 = 'a quiet tangerine '.repeat(15).slice(0, 256);
    expect(await refusedWith(passwords.hashNew(s(p256.slice(0, 64)), customer))).toBe('accepted');
    const { hash } = await passwords.hashNew(s(p256), customer);
    expect(await refusedWith(passwords.hashNew(s(`${p256}x`), customer))).toBe('IDENTITY_PASSWORD_TOO_LONG');
    expect((await passwords.verify(hash, s(p256))).valid).toBe(true);
    expect((await passwords.verify(hash, s(p256.slice(0, 255)))).valid).toBe(false);
    expect((await passwords.verify(hash, s(`${p256}x`))).valid).toBe(false);
  });

  it('refuses common and breached passwords whole, in any letter case', async () => {
    expect(await refusedWith(passwords.hashNew(s('qwertyuiop12345'), customer))).toBe('IDENTITY_PASSWORD_BREACHED');
    expect(await refusedWith(passwords.hashNew(s('PasswordPassword'), customer))).toBe('IDENTITY_PASSWORD_BREACHED');
    expect(await refusedWith(passwords.hashNew(s('Password1'), { ...customer, secondFactor: true }))).toBe('IDENTITY_PASSWORD_BREACHED');
    expect(await refusedWith(passwords.hashNew(s('ILoveYou123'), { ...customer, secondFactor: true }))).toBe('IDENTITY_PASSWORD_BREACHED');
  });

  it("refuses passwords that contain the email's name or the shop's name", async () => {
    expect(await refusedWith(passwords.hashNew(s('my jane.doe secret 2024'), customer))).toBe('IDENTITY_PASSWORD_CONTEXT');
    expect(await refusedWith(passwords.hashNew(s('violet-JANE-umbrella-9'), customer))).toBe('IDENTITY_PASSWORD_CONTEXT');
    // Parts shorter than four characters ("doe") are not context words: they would refuse too much.
    expect(await refusedWith(passwords.hashNew(s('violet-doe-umbrella-9'), customer))).toBe('accepted');
    expect(await refusedWith(passwords.hashNew(s('acme-outdoor forever!'), customer))).toBe('IDENTITY_PASSWORD_CONTEXT');
    expect(await refusedWith(passwords.hashNew(s('tangerine kiwi mango'), { ...customer, contextWords: ['Mango'] }))).toBe(
      'IDENTITY_PASSWORD_CONTEXT',
    );
    expect(await refusedWith(passwords.hashNew(s('violet-umbrella-9x!'), customer))).toBe('accepted');
  });

  it('evaluates without throwing and returns a zxcvbn score and feedback for the UI', async () => {
    const weak = await passwords.evaluate(s('aaaaaaaaaaaaaaaa'), customer);
    expect(weak.acceptable).toBe(true);
    expect(weak.strength.score).toBeLessThanOrEqual(1);
    expect(weak.strength.warning).toBeTypeOf('string');
    const strong = await passwords.evaluate(s('violet umbrella sings at 4am'), customer);
    expect(strong.strength.score).toBe(4);
    const short = await passwords.evaluate(s('short'), customer);
    expect(short).toMatchObject({ acceptable: false, refusal: { code: 'IDENTITY_PASSWORD_TOO_SHORT', details: { minimum: 15 } } });
  });
});

describe('password normalisation (NFKC, ASVS 6.2.9)', () => {
  it('verifies a password typed in another Unicode form', async () => {
    const { hash } = await passwords.hashNew(s('ｖｉｏｌｅｔ ｕｍｂｒｅｌｌａ ﬁne'), customer);
    expect((await passwords.verify(hash, s('violet umbrella fine'))).valid).toBe(true);
    const { hash: accented } = await passwords.hashNew(s('cafe\u0301 au lait, tre\u0300s bien'), customer);
    expect((await passwords.verify(accented, s('caf\u00e9 au lait, tr\u00e8s bien'))).valid).toBe(true);
  });

  it('refuses text that is not well-formed Unicode instead of collapsing it', async () => {
    expect(await refusedWith(passwords.hashNew(s(`violet umbrella \uD800 sings`), customer))).toBe('IDENTITY_PASSWORD_MALFORMED');
    expect(normalisePassword('a\uDC00b')).toBeUndefined();
  });

  it('is idempotent and maps canonically equivalent strings to one password', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 40 }), (raw) => {
        const n = normalisePassword(raw);
        if (!raw.isWellFormed()) return n === undefined;
        return n !== undefined && normalisePassword(n) === n && normalisePassword(raw.normalize('NFD')) === n;
      }),
      { numRuns: 2000 },
    );
  });
});

describe('password hashing (argon2id, OWASP Password Storage Cheat Sheet)', () => {
  it('stores a PHC string with m=19456, t=2, p=1 inside', async () => {
    const { hash } = await passwords.hashNew(s('violet umbrella sings'), customer);
    expect(hash).toMatch(/^\$argon2id\$v=19\$m=19456,t=2,p=1\$[A-Za-z0-9+/]+\$[A-Za-z0-9+/]+$/);
    expect(passwords.needsRehash(hash)).toBe(false);
    expect(await passwords.verify(hash, s('violet umbrella sings'))).toEqual({ valid: true, needsRehash: false });
    expect(await passwords.verify(hash, s('violet umbrella sing'))).toEqual({ valid: false, needsRehash: false });
  });

  it('says when a hash was made with other parameters, so that sign-in can rehash', async () => {
    const old = await argon2Hash('violet umbrella sings', { memoryCost: 19_456, timeCost: 2, parallelism: 1 });
    const stronger = createPasswordService({ hashing: { timeCost: 3 } });
    try {
      expect(await stronger.verify(old, s('violet umbrella sings'))).toEqual({ valid: true, needsRehash: true });
      const fresh = await stronger.rehash(s('violet umbrella sings'));
      expect(fresh).toContain('t=3');
      expect(await stronger.verify(fresh, s('violet umbrella sings'))).toEqual({ valid: true, needsRehash: false });
      expect(stronger.needsRehash('$2b$10$notanargon2hash')).toBe(true);
    } finally {
      await stronger.close();
    }
  });

  it('checks unknown accounts against a dummy hash and answers invalid (ASVS 6.3.8)', async () => {
    expect(await passwords.verify(undefined, s('violet umbrella sings'))).toEqual({ valid: false, needsRehash: false });
    expect(await passwords.verify(null, s(''))).toEqual({ valid: false, needsRehash: false });
    expect(await passwords.verify('not a phc string', s('violet umbrella sings'))).toEqual({ valid: false, needsRehash: false });
  });

  it('refuses with IDENTITY_BUSY once the hashing queue is full, and serves the rest', async () => {
    const small = createPasswordService({ concurrency: { max: 1, queue: 2 } });
    try {
      const { hash } = await small.hashNew(s('violet umbrella sings'), customer);
      const results = await Promise.allSettled(Array.from({ length: 6 }, () => small.verify(hash, s('violet umbrella sings'))));
      const busy = results.filter((r) => r.status === 'rejected' && r.reason instanceof AppError && r.reason.code === 'IDENTITY_BUSY');
      const ok = results.filter((r) => r.status === 'fulfilled' && r.value.valid);
      expect(ok).toHaveLength(3);
      expect(busy).toHaveLength(3);
      expect(((busy[0] as PromiseRejectedResult).reason as AppError).status).toBe(503);
    } finally {
      await small.close();
    }
  });
});

describe('strength estimates (zxcvbn-ts in a worker thread)', () => {
  it('refuses with IDENTITY_BUSY once its queue is full, and answers the rest', async () => {
    const estimator = createStrengthEstimator({ queue: 1 });
    try {
      const results = await Promise.allSettled([
        estimator.estimate('violet umbrella sings', []),
        estimator.estimate('violet umbrella sings', []),
      ]);
      expect(results[0]).toMatchObject({ status: 'fulfilled', value: { score: 4 } });
      expect(results[1]).toMatchObject({ status: 'rejected', reason: { code: 'IDENTITY_BUSY' } });
      expect((await estimator.estimate('password', [])).score).toBe(0);
    } finally {
      await estimator.close();
    }
  });

  it('counts context words against the score', async () => {
    const estimator = createStrengthEstimator();
    try {
      const plain = await estimator.estimate('marguerite1987', []);
      const known = await estimator.estimate('marguerite1987', ['marguerite']);
      expect(known.guesses_log10).toBeLessThan(plain.guesses_log10);
    } finally {
      await estimator.close();
    }
  });
});
