import { randomBytes } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { Clock } from '../../../kernel/clock.ts';
import { fail } from '../../../kernel/errors.ts';
import { Secret } from '../../../kernel/secret.ts';
import type { Database } from '../../../store/schema.ts';
import { IdentityErrors } from '../errors.ts';
import { crockfordBase32 } from '../../../kernel/ids.ts';
import { macMatches, macNewest, type KeyVersions } from '../../../crypto/key-versions.ts';

/**
 * Recovery codes: ten per account, shown once, each usable once (ASVS 6.5.1). Each code is 24
 * Crockford base32 characters = 120 random bits, so by ASVS 6.5.2 (≥ 112 bits of entropy) a keyed
 * one-way function is enough: HMAC-SHA256 under the recovery key, bound to the account id, instead
 * of a salted password hash — a stolen table gives nothing to guess offline without the key, and
 * checking a code costs microseconds, not ten argon2 runs. Comparison is constant-time.
 */
export const RECOVERY_CODE_COUNT = 10;
const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';
const CHARS = 24;

/** 15 random bytes → 24 characters of 5 bits each, shown in groups of four. */
export function generateRecoveryCode(): string {
  return crockfordBase32(randomBytes(15)).match(/.{4}/g)!.join('-');
}

/** Accepts what people type: any case, spaces or hyphens, O for 0, I and L for 1 (Crockford). */
export function normaliseRecoveryCode(input: string): string | undefined {
  if (input.length > 64) return undefined;
  const n = input
    .toUpperCase()
    .replace(/[\s-]/g, '')
    .replace(/O/g, '0')
    .replace(/[IL]/g, '1');
  if (n.length !== CHARS) return undefined;
  for (const c of n) if (!ALPHABET.includes(c)) return undefined;
  return n;
}

export interface RecoveryCodeService {
  /** Replaces the account's codes with ten fresh ones, returned once. */
  regenerate(accountId: string, via?: Transaction<Database>): Promise<Secret<readonly string[]>>;
  /** Uses one code; throws IDENTITY_RECOVERY_CODE_INVALID or IDENTITY_RECOVERY_CODE_REUSED. */
  consume(accountId: string, code: Secret<string>): Promise<{ remaining: number }>;
  remaining(accountId: string): Promise<number>;
  remove(accountId: string): Promise<void>;
}

export function createRecoveryCodeService(deps: { db: Kysely<Database>; clock: Clock; key: KeyVersions }): RecoveryCodeService {
  const { db, clock, key } = deps;
  const text = (accountId: string, normalised: string) => `recovery\u0000${accountId}\u0000${normalised}`;
  const digest = (accountId: string, normalised: string) => macNewest(key, text(accountId, normalised));

  async function remaining(accountId: string): Promise<number> {
    const row = await db
      .selectFrom('identity_recovery_codes')
      .select((eb) => eb.fn.countAll<number>().as('n'))
      .where('account_id', '=', accountId)
      .where('used_at', 'is', null)
      .executeTakeFirst();
    return Number(row?.n ?? 0);
  }

  return {
    async regenerate(accountId, via) {
      const codes = Array.from({ length: RECOVERY_CODE_COUNT }, generateRecoveryCode);
      const at = clock.now().toISOString();
      const write = async (tx: Transaction<Database>) => {
        await tx.deleteFrom('identity_recovery_codes').where('account_id', '=', accountId).execute();
        await tx
          .insertInto('identity_recovery_codes')
          .values(
            codes.map((c) => ({
              account_id: accountId,
              code_hash: digest(accountId, normaliseRecoveryCode(c)!).toString('base64url'),
              used_at: null,
              created_at: at,
            })),
          )
          .execute();
      };
      if (via === undefined) await db.transaction().execute(write);
      else await write(via);
      return new Secret(codes);
    },

    async consume(accountId, code) {
      const n = normaliseRecoveryCode(code.reveal());
      const rows = await db
        .selectFrom('identity_recovery_codes')
        .select(['code_hash', 'used_at'])
        .where('account_id', '=', accountId)
        .execute();
      // Compare with every code of the account, in constant time, without stopping early.
      let match: (typeof rows)[number] | undefined;
      for (const row of rows) if (macMatches(key, text(accountId, n ?? ''), Buffer.from(row.code_hash, 'base64url')) && n !== undefined) match = row;
      if (match === undefined) fail(IdentityErrors.IDENTITY_RECOVERY_CODE_INVALID, 'the recovery code is not valid for this account');
      if (match.used_at !== null) fail(IdentityErrors.IDENTITY_RECOVERY_CODE_REUSED, 'the recovery code was already used');
      // The conditional update is the single use: of two concurrent uses only one changes the row.
      const result = await db
        .updateTable('identity_recovery_codes')
        .set({ used_at: clock.now().toISOString() })
        .where('account_id', '=', accountId)
        .where('code_hash', '=', match.code_hash)
        .where('used_at', 'is', null)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) fail(IdentityErrors.IDENTITY_RECOVERY_CODE_REUSED, 'the recovery code was already used');
      return { remaining: await remaining(accountId) };
    },

    remaining,

    async remove(accountId) {
      await db.deleteFrom('identity_recovery_codes').where('account_id', '=', accountId).execute();
    },
  };
}
