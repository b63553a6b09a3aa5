import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../../kernel/clock.ts';
import { fail } from '../../../kernel/errors.ts';
import { Secret } from '../../../kernel/secret.ts';
import type { Database } from '../../../store/schema.ts';
import { IdentityErrors } from '../errors.ts';
import { macMatches, macNewest, type KeyVersions } from '../../../crypto/key-versions.ts';

/**
 * One-time links for email verification and password reset. A token is `<id>.<secret>`: 96
 * random bits to find the row and 256 from the CSPRNG as the secret (≥ 128 bits, ASVS 7.2.3);
 * only an HMAC-SHA256 of purpose, id and secret is stored, compared in constant time. Each link
 * works once (a conditional UPDATE marks it used), expires (30 minutes for reset, 24 hours for
 * verification by default), and a new reset link deletes older unused ones (OWASP Forgot Password
 * Cheat Sheet; ASVS 6.4.x). A link for one purpose is no good for the other. Used links stay, so a
 * second use is told apart (IDENTITY_TOKEN_REUSED → `authn_token_reuse`); expired and used rows
 * can be swept with `sweep`.
 */
export type TokenPurpose = 'verify_email' | 'reset_password';

export const TOKEN_TTL_MS: Readonly<Record<TokenPurpose, number>> = {
  verify_email: 24 * 60 * 60 * 1000,
  reset_password: 30 * 60 * 1000,
};

export interface IssuedToken {
  readonly token: Secret<string>;
  readonly expires_at: string;
  /** How many older unused links of this purpose it superseded (for `authn_token_revoked`). */
  readonly revoked: number;
}

export interface TokenService {
  issue(accountId: string, purpose: TokenPurpose): Promise<IssuedToken>;
  /** Checks a link (valid, unexpired, unused) without using it; throws like `consume`. */
  peek(purpose: TokenPurpose, token: Secret<string>): Promise<{ accountId: string }>;
  /** Uses a link once; throws IDENTITY_TOKEN_INVALID or IDENTITY_TOKEN_REUSED. */
  consume(purpose: TokenPurpose, token: Secret<string>): Promise<{ accountId: string }>;
  /** Revokes every unused link of the account (after a password change, say); returns how many. */
  revokeAll(accountId: string, purpose?: TokenPurpose): Promise<number>;
  /** Deletes links that expired more than `graceMs` ago, used or not; returns how many. */
  sweep(graceMs?: number): Promise<number>;
}

const FORMAT = /^([A-Za-z0-9_-]{16})\.([A-Za-z0-9_-]{43})$/;
const DUMMY = Buffer.alloc(32);

export function createTokenService(deps: {
  db: Kysely<Database>;
  clock: Clock;
  key: KeyVersions;
  ttlMs?: Partial<Record<TokenPurpose, number>>;
}): TokenService {
  const { db, clock, key } = deps;
  const ttl = { ...TOKEN_TTL_MS, ...deps.ttlMs };
  const text = (purpose: string, id: string, secret: string) => `token\u0000${purpose}\u0000${id}\u0000${secret}`;
  const digest = (purpose: string, id: string, secret: string) => macNewest(key, text(purpose, id, secret));

  async function revokeAll(accountId: string, purpose?: TokenPurpose): Promise<number> {
    let q = db.deleteFrom('identity_tokens').where('account_id', '=', accountId).where('used_at', 'is', null);
    if (purpose !== undefined) q = q.where('purpose', '=', purpose);
    return Number((await q.executeTakeFirst()).numDeletedRows);
  }

  /** The link's row when it is valid, unexpired and unused; throws otherwise. */
  async function check(purpose: TokenPurpose, token: Secret<string>) {
    const m = FORMAT.exec(token.reveal());
    if (m === null) fail(IdentityErrors.IDENTITY_TOKEN_INVALID, 'the link is not valid');
    const [, id, secret] = m as unknown as [string, string, string];
    const row = await db.selectFrom('identity_tokens').selectAll().where('id', '=', id).executeTakeFirst();
    const stored = row === undefined ? DUMMY : Buffer.from(row.secret_hash, 'base64url');
    const matches = macMatches(key, text(purpose, id, secret), stored);
    if (row === undefined || !matches || row.purpose !== purpose) fail(IdentityErrors.IDENTITY_TOKEN_INVALID, 'the link is not valid');
    if (row.used_at !== null) fail(IdentityErrors.IDENTITY_TOKEN_REUSED, 'the link was already used');
    const now = clock.now().toISOString();
    if (row.expires_at <= now) fail(IdentityErrors.IDENTITY_TOKEN_INVALID, 'the link has expired');
    return { row, id, now };
  }

  return {
    async issue(accountId, purpose) {
      const id = randomBytes(12).toString('base64url');
      const secret = randomBytes(32).toString('base64url');
      const now = clock.now();
      const expires = new Date(now.getTime() + ttl[purpose]).toISOString();
      const revoked = await db.transaction().execute(async (tx) => {
        const superseded =
          purpose === 'reset_password'
            ? Number(
                (
                  await tx
                    .deleteFrom('identity_tokens')
                    .where('account_id', '=', accountId)
                    .where('purpose', '=', purpose)
                    .where('used_at', 'is', null)
                    .executeTakeFirst()
                ).numDeletedRows,
              )
            : 0;
        await tx
          .insertInto('identity_tokens')
          .values({
            id,
            account_id: accountId,
            purpose,
            secret_hash: digest(purpose, id, secret).toString('base64url'),
            expires_at: expires,
            used_at: null,
            created_at: now.toISOString(),
          })
          .execute();
        return superseded;
      });
      return { token: new Secret(`${id}.${secret}`), expires_at: expires, revoked };
    },

    async peek(purpose, token) {
      const { row } = await check(purpose, token);
      return { accountId: row.account_id };
    },

    async consume(purpose, token) {
      const { row, id, now } = await check(purpose, token);
      const result = await db
        .updateTable('identity_tokens')
        .set({ used_at: now })
        .where('id', '=', id)
        .where('used_at', 'is', null)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) fail(IdentityErrors.IDENTITY_TOKEN_REUSED, 'the link was already used');
      return { accountId: row.account_id };
    },

    revokeAll,

    async sweep(graceMs = 7 * 24 * 60 * 60 * 1000) {
      const before = new Date(clock.now().getTime() - graceMs).toISOString();
      const result = await db.deleteFrom('identity_tokens').where('expires_at', '<', before).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
