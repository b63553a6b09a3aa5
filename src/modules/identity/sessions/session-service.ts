import { createHmac, randomBytes, type KeyObject } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../../kernel/clock.ts';
import { newId } from '../../../kernel/ids.ts';
import { Secret } from '../../../kernel/secret.ts';
import type { Database } from '../../../store/schema.ts';
import type { Realm } from '../passwords/password-policy.ts';

/**
 * Sessions of customers and staff. A token is `cs_` and 256 bits from the CSPRNG (ASVS 7.2.3:
 * ≥ 128), only its HMAC-SHA256 under the session key is stored, and it is looked up by that hash,
 * so no comparison of secrets happens in application code (an indexed equality on a keyed hash
 * leaks nothing usable about other tokens). Each session has an idle and an absolute limit per
 * realm (NIST SP 800-63B rev 4 §2.2.3 AAL2: ≤ 1 h idle, ≤ 24 h absolute; PCI DSS 4.0.1 8.2.8:
 * staff 15 min idle). A privilege change (MFA, step-up) rotates the token in place: the old one
 * stops working, the absolute limit does not move (ASVS 7.2.4). Revocation is a row update checked
 * on every request: there is no cache to go stale (ASVS 7.4.1).
 */
export interface SessionLimits {
  readonly idleMs: number;
  readonly absoluteMs: number;
}

export interface SessionPolicy {
  readonly customer: SessionLimits;
  readonly staff: SessionLimits;
  /** How recent a password or passkey check must be for sensitive actions (ASVS 7.5.1). */
  readonly reauthMs: number;
}

export const DEFAULT_SESSION_POLICY: SessionPolicy = {
  customer: { idleMs: 60 * 60_000, absoluteMs: 24 * 3_600_000 },
  staff: { idleMs: 15 * 60_000, absoluteMs: 12 * 3_600_000 },
  reauthMs: 10 * 60_000,
};

export const SESSION_ID_PREFIX = 'ses';
/** last_seen_at is written at most this often; the idle limit is therefore conservative by ≤ 1 minute. */
const TOUCH_EVERY_MS = 60_000;
const TOKEN = /^cs_[A-Za-z0-9_-]{43}$/;

export interface SessionView {
  readonly id: string;
  readonly accountId: string;
  readonly realm: Realm;
  readonly createdAt: string;
  readonly authenticatedAt: string;
  readonly mfaVerifiedAt: string | null;
  readonly lastSeenAt: string;
  readonly expiresAt: string;
  /** When the idle limit ends unless the session is used before. */
  readonly idleExpiresAt: string;
  readonly device: string;
  /** Last rotation (privilege change), null before the first. */
  readonly rotatedAt: string | null;
  /** The keyed hash of the token this view was resolved with: rotation is a compare-and-set on it. */
  readonly tokenHash: string;
}

export type Resolution =
  | { readonly ok: true; readonly session: SessionView }
  | { readonly ok: false; readonly reason: 'malformed' | 'unknown' }
  /** A known session that can no longer be used; `expiredNow` is true once, when it crossed a limit. */
  | { readonly ok: false; readonly reason: 'expired' | 'revoked'; readonly accountId: string; readonly sessionId: string; readonly expiredNow: boolean };

export interface SessionService {
  readonly policy: SessionPolicy;
  create(input: { accountId: string; realm: Realm; device: string; mfaVerified: boolean; authenticatedAt?: Date }): Promise<{ token: Secret<string>; session: SessionView }>;
  /** The session a presented token belongs to, if it is live; refreshes last-seen. */
  resolve(realm: Realm, token: string): Promise<Resolution>;
  /** A new token for the same session after a privilege change; undefined when it was revoked or rotated meanwhile. */
  rotate(session: SessionView, change: { authenticated?: boolean; mfaVerified?: boolean }): Promise<{ token: Secret<string>; session: SessionView } | undefined>;
  /** True when a password or passkey was checked within the step-up window. */
  isRecent(session: SessionView): boolean;
  list(accountId: string): Promise<SessionView[]>;
  /** Revokes one session of the account; false when it has no such live session. */
  revoke(accountId: string, sessionId: string, reason: string): Promise<boolean>;
  /** Revokes every live session of the account (password change or reset: ASVS 7.4.3); returns how many. */
  revokeAll(accountId: string, reason: string): Promise<number>;
  /**
   * Counts one use of a session that has ended (the use that crossed a limit is counted by
   * `resolve` itself: `expiredNow`). Says what to audit: the first use at once, then at most one
   * summary per session per minute with the uses since the last entry; undefined: nothing now
   * (the use waits for the next summary). The count lives on the session's row, so every process
   * shares it, and a compare-and-set on the time of the last entry elects one writer.
   */
  deadUse(sessionId: string): Promise<DeadUseEntry | undefined>;
  /** Claims the summaries that are due (uses waiting, last entry a minute old or more), for the sweep to write. */
  dueDeadUses(): Promise<{ sessionId: string; accountId: string; count: number }[]>;
  /** Deletes sessions past their absolute limit (and revoked ones) more than a day ago. */
  sweep(): Promise<number>;
}

export type DeadUseEntry = { readonly kind: 'first' } | { readonly kind: 'summary'; readonly count: number };

/** At most one audit entry about a dead session's uses per this long. */
export const DEAD_USE_SUMMARY_MS = 60_000;

type Row = Database['identity_sessions'];

export function createSessionService(deps: { db: Kysely<Database>; clock: Clock; key: KeyObject; policy?: Partial<SessionPolicy> }): SessionService {
  const { db, clock, key } = deps;
  const policy: SessionPolicy = { ...DEFAULT_SESSION_POLICY, ...deps.policy };
  const hash = (kind: string, value: string) => createHmac('sha256', key).update(`${kind}\u0000${value}`, 'utf8').digest('base64url');
  const limits = (realm: Realm) => policy[realm];
  const iso = (ms: number) => new Date(ms).toISOString();

  function view(row: Row): SessionView {
    return {
      id: row.id,
      accountId: row.account_id,
      realm: row.realm,
      createdAt: row.created_at,
      authenticatedAt: row.authenticated_at,
      mfaVerifiedAt: row.mfa_verified_at,
      lastSeenAt: row.last_seen_at,
      expiresAt: row.expires_at,
      idleExpiresAt: iso(Math.min(Date.parse(row.last_seen_at) + limits(row.realm).idleMs, Date.parse(row.expires_at))),
      device: row.device,
      rotatedAt: row.rotated_at,
      tokenHash: row.token_hash,
    };
  }

  const newToken = () => new Secret(`cs_${randomBytes(32).toString('base64url')}`);

  /** Summarises `count` waiting uses if the last entry is still the one read (`since`): true for the one writer. */
  async function claim(sessionId: string, since: string | null, count: number, at: string): Promise<boolean> {
    const result = await db
      .updateTable('identity_sessions')
      .set((eb) => ({ dead_use_logged_at: at, dead_uses: eb('dead_uses', '-', count) }))
      .where('id', '=', sessionId)
      .where('dead_use_logged_at', since === null ? 'is' : '=', since)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  async function expire(row: Row, at: string): Promise<boolean> {
    // The use that crosses the limit is the first use of the ended session, audited at once.
    const result = await db
      .updateTable('identity_sessions')
      .set({ revoked_at: at, revoked_reason: 'expired', dead_use_logged_at: at })
      .where('id', '=', row.id)
      .where('revoked_at', 'is', null)
      .executeTakeFirst();
    return Number(result.numUpdatedRows) === 1;
  }

  return {
    policy,

    async create({ accountId, realm, device, mfaVerified, authenticatedAt }) {
      const now = clock.now();
      const at = now.toISOString();
      const token = newToken();
      const row: Row = {
        id: newId(SESSION_ID_PREFIX, now.getTime()),
        token_hash: hash('session', token.reveal()),
        account_id: accountId,
        realm,
        created_at: at,
        authenticated_at: (authenticatedAt ?? now).toISOString(),
        mfa_verified_at: mfaVerified ? at : null,
        last_seen_at: at,
        expires_at: iso(now.getTime() + limits(realm).absoluteMs),
        device: device.slice(0, 64),
        rotated_at: null,
        revoked_at: null,
        revoked_reason: null,
        dead_uses: 0,
        dead_use_logged_at: null,
      };
      await db.insertInto('identity_sessions').values(row).execute();
      return { token, session: view(row) };
    },

    async resolve(realm, token) {
      if (!TOKEN.test(token)) return { ok: false, reason: 'malformed' };
      const row = await db
        .selectFrom('identity_sessions')
        .selectAll()
        .where('token_hash', '=', hash('session', token))
        .where('realm', '=', realm)
        .executeTakeFirst();
      if (row === undefined) return { ok: false, reason: 'unknown' };
      const known = { accountId: row.account_id, sessionId: row.id };
      if (row.revoked_at !== null) return { ok: false, reason: 'revoked', ...known, expiredNow: false };
      const now = clock.now();
      const s = view(row);
      if (now.getTime() >= Date.parse(s.idleExpiresAt)) {
        return { ok: false, reason: 'expired', ...known, expiredNow: await expire(row, now.toISOString()) };
      }
      if (now.getTime() - Date.parse(row.last_seen_at) >= TOUCH_EVERY_MS) {
        const seen = now.toISOString();
        await db.updateTable('identity_sessions').set({ last_seen_at: seen }).where('id', '=', row.id).where('revoked_at', 'is', null).execute();
        return { ok: true, session: view({ ...row, last_seen_at: seen }) };
      }
      return { ok: true, session: s };
    },

    async rotate(session, change) {
      const now = clock.now().toISOString();
      const token = newToken();
      const set: Partial<Row> = { token_hash: hash('session', token.reveal()), rotated_at: now, last_seen_at: now };
      if (change.authenticated === true) set.authenticated_at = now;
      if (change.mfaVerified === true) set.mfa_verified_at = now;
      const result = await db
        .updateTable('identity_sessions')
        .set(set)
        .where('id', '=', session.id)
        .where('token_hash', '=', session.tokenHash)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1) return undefined;
      const row = await db.selectFrom('identity_sessions').selectAll().where('id', '=', session.id).executeTakeFirstOrThrow();
      return { token, session: view(row) };
    },

    isRecent(session) {
      return clock.now().getTime() - Date.parse(session.authenticatedAt) <= policy.reauthMs;
    },

    async list(accountId) {
      const now = clock.now().getTime();
      const rows = await db
        .selectFrom('identity_sessions')
        .selectAll()
        .where('account_id', '=', accountId)
        .where('revoked_at', 'is', null)
        .where('expires_at', '>', iso(now))
        .orderBy('created_at', 'desc')
        .execute();
      return rows.map(view).filter((s) => Date.parse(s.idleExpiresAt) > now);
    },

    async revoke(accountId, sessionId, reason) {
      const result = await db
        .updateTable('identity_sessions')
        .set({ revoked_at: clock.now().toISOString(), revoked_reason: reason })
        .where('id', '=', sessionId)
        .where('account_id', '=', accountId)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows) === 1;
    },

    async revokeAll(accountId, reason) {
      const result = await db
        .updateTable('identity_sessions')
        .set({ revoked_at: clock.now().toISOString(), revoked_reason: reason })
        .where('account_id', '=', accountId)
        .where('revoked_at', 'is', null)
        .executeTakeFirst();
      return Number(result.numUpdatedRows);
    },

    async deadUse(sessionId) {
      const counted = await db
        .updateTable('identity_sessions')
        .set((eb) => ({ dead_uses: eb('dead_uses', '+', 1) }))
        .where('id', '=', sessionId)
        .returning(['dead_uses', 'dead_use_logged_at'])
        .executeTakeFirst();
      if (counted === undefined) return undefined;
      const now = clock.now();
      const since = counted.dead_use_logged_at;
      if (since === null) return (await claim(sessionId, null, 1, now.toISOString())) ? { kind: 'first' } : undefined;
      if (now.getTime() - Date.parse(since) < DEAD_USE_SUMMARY_MS) return undefined;
      return (await claim(sessionId, since, counted.dead_uses, now.toISOString())) ? { kind: 'summary', count: counted.dead_uses } : undefined;
    },

    async dueDeadUses() {
      const now = clock.now();
      const rows = await db
        .selectFrom('identity_sessions')
        .select(['id', 'account_id', 'dead_uses', 'dead_use_logged_at'])
        .where('dead_uses', '>', 0)
        .where('dead_use_logged_at', '<=', iso(now.getTime() - DEAD_USE_SUMMARY_MS))
        .limit(5000)
        .execute();
      const due: { sessionId: string; accountId: string; count: number }[] = [];
      for (const row of rows)
        if (await claim(row.id, row.dead_use_logged_at, row.dead_uses, now.toISOString())) due.push({ sessionId: row.id, accountId: row.account_id, count: row.dead_uses });
      return due;
    },

    async sweep() {
      const now = clock.now().getTime();
      const dayAgo = iso(now - 24 * 3_600_000);
      const sessions = await db
        .deleteFrom('identity_sessions')
        .where((eb) => eb.or([eb('expires_at', '<', dayAgo), eb('revoked_at', '<', dayAgo)]))
        .executeTakeFirst();
      return Number(sessions.numDeletedRows);
    },
  };
}
