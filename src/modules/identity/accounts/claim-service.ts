import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../../kernel/clock.ts';
import { fail } from '../../../kernel/errors.ts';
import { isId, newId } from '../../../kernel/ids.ts';
import { Secret } from '../../../kernel/secret.ts';
import type { Database } from '../../../store/schema.ts';
import { IdentityErrors } from '../errors.ts';
import { openEmail, sealEmail } from './email.ts';
import { macMatches, macNewest, type KeyVersions } from '../../../crypto/key-versions.ts';

/**
 * Claim links: a shop invites a customer it stored to take over their account
 * (`POST /v1/customers/{id}/invitation`). A link is `<clm id>.<secret>`, the secret 256 bits from
 * the CSPRNG (ASVS 7.2.3); only an HMAC-SHA256 of id and secret is stored and compared in constant
 * time, with the address the link was mailed to sealed beside it. A link works once (a conditional
 * UPDATE spends it), for 72 hours, and a new invitation of the customer supersedes every unused
 * older one. Spent and expired links are swept after a week.
 */
export const CLAIM_ID_PREFIX = 'clm';
export const CLAIM_TTL_MS = 72 * 60 * 60 * 1000;

export interface Claim {
  readonly id: string;
  readonly customerId: string;
  /** The normalised address the link was mailed to. */
  readonly email: string;
}

export interface ClaimService {
  issue(input: { customerId: string; email: string; createdBy: string }): Promise<{ token: Secret<string>; expires_at: string; superseded: number }>;
  /** The claim a link names when genuine, unused and unexpired; throws IDENTITY_TOKEN_INVALID or IDENTITY_TOKEN_REUSED. */
  check(token: Secret<string>): Promise<Claim>;
  /** Spends the link; throws IDENTITY_TOKEN_REUSED when another request spent it first. */
  spend(claim: Claim): Promise<void>;
  sweep(graceMs?: number): Promise<number>;
}

const FORMAT = /^(clm_[0-9A-HJKMNP-TV-Z]{26})\.([A-Za-z0-9_-]{43})$/;
const DUMMY = Buffer.alloc(32);

export function createClaimService(deps: { db: Kysely<Database>; clock: Clock; mac: KeyVersions; emailSeal: KeyVersions }): ClaimService {
  const { db, clock } = deps;
  const text = (id: string, secret: string) => `claim\u0000${id}\u0000${secret}`;
  const digest = (id: string, secret: string) => macNewest(deps.mac, text(id, secret));

  return {
    async issue({ customerId, email, createdBy }) {
      const now = clock.now();
      const id = newId(CLAIM_ID_PREFIX, now.getTime());
      const secret = randomBytes(32).toString('base64url');
      const expires = new Date(now.getTime() + CLAIM_TTL_MS).toISOString();
      const superseded = await db.transaction().execute(async (tx) => {
        const gone = await tx.deleteFrom('identity_claims').where('customer_id', '=', customerId).where('used_at', 'is', null).executeTakeFirst();
        await tx
          .insertInto('identity_claims')
          .values({
            id,
            customer_id: customerId,
            email_sealed: sealEmail(deps.emailSeal, id, email),
            secret_hash: digest(id, secret).toString('base64url'),
            created_by: createdBy,
            expires_at: expires,
            used_at: null,
            created_at: now.toISOString(),
          })
          .execute();
        return Number(gone.numDeletedRows);
      });
      return { token: new Secret(`${id}.${secret}`), expires_at: expires, superseded };
    },

    async check(token) {
      const m = FORMAT.exec(token.reveal());
      const id = m?.[1];
      const row = id === undefined || !isId(CLAIM_ID_PREFIX, id) ? undefined : await db.selectFrom('identity_claims').selectAll().where('id', '=', id).executeTakeFirst();
      const stored = row === undefined ? DUMMY : Buffer.from(row.secret_hash, 'base64url');
      const matches = macMatches(deps.mac, text(id ?? '', m?.[2] ?? ''), stored);
      if (row === undefined || !matches) fail(IdentityErrors.IDENTITY_TOKEN_INVALID, 'the link is not valid');
      if (row.used_at !== null) fail(IdentityErrors.IDENTITY_TOKEN_REUSED, 'the link was already used');
      if (row.expires_at <= clock.now().toISOString()) fail(IdentityErrors.IDENTITY_TOKEN_INVALID, 'the link has expired');
      const email = openEmail(deps.emailSeal, row.id, row.email_sealed);
      if (email === undefined) fail(IdentityErrors.IDENTITY_TOKEN_INVALID, 'the link is not valid');
      return { id: row.id, customerId: row.customer_id, email };
    },

    async spend(claim) {
      const result = await db
        .updateTable('identity_claims')
        .set({ used_at: clock.now().toISOString() })
        .where('id', '=', claim.id)
        .where('used_at', 'is', null)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) fail(IdentityErrors.IDENTITY_TOKEN_REUSED, 'the link was already used');
    },

    async sweep(graceMs = 7 * 24 * 60 * 60 * 1000) {
      const before = new Date(clock.now().getTime() - graceMs).toISOString();
      return Number((await db.deleteFrom('identity_claims').where('expires_at', '<', before).executeTakeFirst()).numDeletedRows);
    },
  };
}
