import type { Kysely } from 'kysely';
import type { Clock } from '../../../kernel/clock.ts';
import type { Database } from '../../../store/schema.ts';

/**
 * WebAuthn challenges kept on the server: 256 random bits, single use, short-lived (W3C WebAuthn
 * Level 3 §13.4.3: at least 16 random bytes, generated and checked by the relying party). Taking a
 * challenge deletes it in the same statement (DELETE … RETURNING), so of two answers to one
 * challenge only the first is even looked at, and a failed verification burns it too.
 */
export type ChallengePurpose = 'registration' | 'authentication';

export interface ChallengeStore {
  put(challenge: string, purpose: ChallengePurpose, accountId: string | null): Promise<void>;
  /** The pending challenge, removed; undefined when unknown, already taken, or expired. */
  take(challenge: string, purpose: ChallengePurpose): Promise<{ accountId: string | null } | undefined>;
}

export function createChallengeStore(deps: { db: Kysely<Database>; clock: Clock; ttlMs: number }): ChallengeStore {
  const { db, clock, ttlMs } = deps;
  return {
    async put(challenge, purpose, accountId) {
      const now = clock.now();
      await db.deleteFrom('identity_webauthn_challenges').where('expires_at', '<=', now.toISOString()).execute();
      await db
        .insertInto('identity_webauthn_challenges')
        .values({
          challenge,
          purpose,
          account_id: accountId,
          expires_at: new Date(now.getTime() + ttlMs).toISOString(),
          created_at: now.toISOString(),
        })
        .execute();
    },

    async take(challenge, purpose) {
      const row = await db
        .deleteFrom('identity_webauthn_challenges')
        .where('challenge', '=', challenge)
        .where('purpose', '=', purpose)
        .returning(['account_id', 'expires_at'])
        .executeTakeFirst();
      if (row === undefined || row.expires_at <= clock.now().toISOString()) return undefined;
      return { accountId: row.account_id };
    },
  };
}
