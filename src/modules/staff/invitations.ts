import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { Clock } from '../../kernel/clock.ts';
import { fail } from '../../kernel/errors.ts';
import { isId, newId } from '../../kernel/ids.ts';
import { Secret } from '../../kernel/secret.ts';
import type { Database } from '../../store/schema.ts';
import { StaffErrors } from './errors.ts';

/**
 * Invitation links: `<inv_id>.<secret>`, the secret 256 bits from the CSPRNG. Only SHA-256 of the
 * secret is stored — with 256 bits of entropy an unkeyed hash leaves nothing to guess offline
 * (ASVS 6.4.1 / 6.5.2: ≥ 112 bits) — and compared in constant time. A link is short-lived
 * (default 24 hours: ASVS 6.4.1 "short expiry" for activation links), works once (consumed by a
 * conditional update, so two racing uses cannot both pass), and a new link for the same member
 * supersedes the old one.
 */
export const INVITATION_ID_PREFIX = 'inv';
export const DEFAULT_INVITATION_TTL_HOURS = 24;
const TOKEN = /^(inv_[0-9A-HJKMNP-TV-Z]{26})\.([A-Za-z0-9_-]{43})$/;

const digest = (secret: string) => createHash('sha256').update(secret, 'utf8').digest();

export interface Invitations {
  /** Issues a fresh link for the member, deleting any unused earlier one. */
  issue(tx: Transaction<Database>, memberId: string): Promise<{ token: Secret<string>; expiresAt: string }>;
  /** The invitation a token names, when genuine, unexpired and unused; throws otherwise. */
  check(token: Secret<string>): Promise<{ id: string; memberId: string }>;
  /** Marks it used and returns the stamp; undefined when another request used it first. */
  consume(id: string): Promise<string | undefined>;
  /** Makes it usable again (the password was refused after consuming). */
  release(id: string, usedAt: string): Promise<void>;
}

export function createInvitations(deps: { db: Kysely<Database>; clock: Clock; ttlHours?: number }): Invitations {
  const { db, clock } = deps;
  const ttlMs = (deps.ttlHours ?? DEFAULT_INVITATION_TTL_HOURS) * 3_600_000;

  return {
    async issue(tx, memberId) {
      const now = clock.now();
      const id = newId(INVITATION_ID_PREFIX, now.getTime());
      const secret = randomBytes(32).toString('base64url');
      const expiresAt = new Date(now.getTime() + ttlMs).toISOString();
      await tx.deleteFrom('staff_invitations').where('member_id', '=', memberId).where('used_at', 'is', null).execute();
      await tx
        .insertInto('staff_invitations')
        .values({ id, member_id: memberId, secret_hash: digest(secret).toString('base64url'), expires_at: expiresAt, used_at: null, created_at: now.toISOString() })
        .execute();
      return { token: new Secret(`${id}.${secret}`), expiresAt };
    },

    async check(token) {
      const m = TOKEN.exec(token.reveal());
      if (m === null || !isId(INVITATION_ID_PREFIX, m[1]!)) fail(StaffErrors.STAFF_INVITATION_INVALID, 'the invitation link is not valid');
      const row = await db.selectFrom('staff_invitations').selectAll().where('id', '=', m[1]!).executeTakeFirst();
      const stored = row === undefined ? Buffer.alloc(32) : Buffer.from(row.secret_hash, 'base64url');
      const matches = stored.length === 32 && timingSafeEqual(stored, digest(m[2]!));
      if (row === undefined || !matches) fail(StaffErrors.STAFF_INVITATION_INVALID, 'the invitation link is not valid');
      if (row.used_at !== null) fail(StaffErrors.STAFF_INVITATION_USED, 'the invitation link was already used');
      if (row.expires_at <= clock.now().toISOString()) fail(StaffErrors.STAFF_INVITATION_INVALID, 'the invitation link has expired');
      return { id: row.id, memberId: row.member_id };
    },

    async consume(id) {
      const usedAt = clock.now().toISOString();
      const result = await db
        .updateTable('staff_invitations')
        .set({ used_at: usedAt })
        .where('id', '=', id)
        .where('used_at', 'is', null)
        .where('expires_at', '>', usedAt)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1 ? usedAt : undefined;
    },

    async release(id, usedAt) {
      await db.updateTable('staff_invitations').set({ used_at: null }).where('id', '=', id).where('used_at', '=', usedAt).execute();
    },
  };
}
