import { createHmac, randomBytes, type KeyObject } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../../kernel/clock.ts';
import { Secret } from '../../../kernel/secret.ts';
import type { Database } from '../../../store/schema.ts';
import type { Realm } from '../passwords/password-policy.ts';

/**
 * The MFA ticket: what a correct password earns when the account has a second factor — not a
 * session, only the right to answer with that factor, for five minutes and five wrong answers.
 * `mt_` and 256 random bits; only its HMAC-SHA256 is stored (like session tokens); used once, by a
 * conditional DELETE, so two racing completions cannot both open a session (ASVS 6.5.1, 7.2.4).
 */
export interface TicketPolicy {
  readonly ttlMs: number;
  readonly tries: number;
}

export const DEFAULT_TICKET_POLICY: TicketPolicy = { ttlMs: 5 * 60_000, tries: 5 };

export interface PendingSignIn {
  readonly accountId: string;
  /** When the password was verified (the session's authenticated_at). */
  readonly createdAt: string;
}

export interface TicketService {
  issue(accountId: string, realm: Realm): Promise<{ ticket: Secret<string>; expiresAt: string }>;
  /** The ticket's sign-in while it is live and has tries left. */
  peek(realm: Realm, ticket: string): Promise<PendingSignIn | undefined>;
  /** Counts a wrong answer; the ticket dies after `tries`. */
  fail(ticket: string): Promise<void>;
  /** Uses the ticket once; undefined when another request used it first, or it died. */
  consume(realm: Realm, ticket: string): Promise<PendingSignIn | undefined>;
  /** Deletes expired tickets; returns how many. */
  sweep(): Promise<number>;
}

const TICKET = /^mt_[A-Za-z0-9_-]{43}$/;

export function createTicketService(deps: { db: Kysely<Database>; clock: Clock; key: KeyObject; policy?: Partial<TicketPolicy> }): TicketService {
  const { db, clock, key } = deps;
  const policy: TicketPolicy = { ...DEFAULT_TICKET_POLICY, ...deps.policy };
  const hash = (ticket: string) => createHmac('sha256', key).update(`ticket\u0000${ticket}`, 'utf8').digest('base64url');

  async function peek(realm: Realm, ticket: string): Promise<PendingSignIn | undefined> {
    if (!TICKET.test(ticket)) return undefined;
    const row = await db
      .selectFrom('identity_mfa_tickets')
      .selectAll()
      .where('ticket_hash', '=', hash(ticket))
      .where('realm', '=', realm)
      .where('expires_at', '>', clock.now().toISOString())
      .where('failures', '<', policy.tries)
      .executeTakeFirst();
    return row === undefined ? undefined : { accountId: row.account_id, createdAt: row.created_at };
  }

  return {
    async issue(accountId, realm) {
      const now = clock.now();
      const ticket = new Secret(`mt_${randomBytes(32).toString('base64url')}`);
      const expiresAt = new Date(now.getTime() + policy.ttlMs).toISOString();
      await db
        .insertInto('identity_mfa_tickets')
        .values({ ticket_hash: hash(ticket.reveal()), account_id: accountId, realm, created_at: now.toISOString(), expires_at: expiresAt, failures: 0 })
        .execute();
      return { ticket, expiresAt };
    },

    peek,

    async fail(ticket) {
      if (!TICKET.test(ticket)) return;
      await db
        .updateTable('identity_mfa_tickets')
        .set((eb) => ({ failures: eb('failures', '+', 1) }))
        .where('ticket_hash', '=', hash(ticket))
        .execute();
    },

    async consume(realm, ticket) {
      const found = await peek(realm, ticket);
      if (found === undefined) return undefined;
      const result = await db
        .deleteFrom('identity_mfa_tickets')
        .where('ticket_hash', '=', hash(ticket))
        .where('failures', '<', policy.tries)
        .executeTakeFirst();
      return Number(result.numDeletedRows) === 1 ? found : undefined;
    },

    async sweep() {
      const result = await db.deleteFrom('identity_mfa_tickets').where('expires_at', '<', clock.now().toISOString()).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
