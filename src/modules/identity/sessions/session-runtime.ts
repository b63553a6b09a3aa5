import { createHmac, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { join } from 'node:path';
import { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import type { Config } from '../../../config/config.ts';
import type { Clock } from '../../../kernel/clock.ts';
import type { Logger } from '../../../kernel/logger.ts';
import type { Secret } from '../../../kernel/secret.ts';
import type { Database } from '../../../store/schema.ts';
import type { AuditLog } from '../../audit/service.ts';
import type { BlindIndexKeys } from '../../../crypto/blind-index.ts';
import { versionsOf, type KeyVersions } from '../../../crypto/key-versions.ts';
import { createAccountService, type AccountInfo, type AccountService } from '../accounts/account-service.ts';
import { createDatabaseCounters } from '../throttling/counters-database.ts';
import { createRedisCounters } from '../throttling/counters-redis.ts';
import { deriveIdentityKeys, type IdentityKeys } from '../keys.ts';
import { createLockout, type Lockout } from '../throttling/lockout.ts';
import { AUTH_FAILURE_WINDOW_MS, createAuthFailureThrottle, type AuthFailureThrottle } from '../throttling/auth-failures.ts';
import type { BucketPolicy } from '../throttling/throttle-policy.ts';
import { passwordResetMail, verificationMail } from '../mail/mail-messages.ts';
import { createMailer, mailSender, publicOrigin, type Mailer, type MailMessage } from '../mail/mailer.ts';
import { createPasskeyService, type PasskeyService } from '../factors/passkey-service.ts';
import type { Realm } from '../passwords/password-policy.ts';
import { createPasswordService, defaultHashConcurrency, type PasswordService } from '../passwords/password-service.ts';
import { createRecoveryCodeService, type RecoveryCodeService } from '../factors/recovery-codes.ts';
import { AUTHN_EVENTS } from '../audit-events.ts';
import { authnAudit, type AuthnAudit } from './session-audit.ts';
import { createGate, type Gate } from './session-gate.ts';
import { accountExistsMail, createMailQueue, passwordChangedMail, type MailQueue } from './session-mail.ts';
import { createSessionService, type DeadUseEntry, type SessionService } from './session-service.ts';
import { createTicketService, type TicketService } from './session-tickets.ts';
import { createSignInService, type SignInService } from './session-signin.ts';
import { createTokenService, TOKEN_TTL_MS, type TokenService } from '../accounts/token-service.ts';
import { createClaimService, type ClaimService } from '../accounts/claim-service.ts';
import { createTotpService, type TotpService } from '../factors/totp-service.ts';

/**
 * The identity capability wired from the configuration, once per process: keys, passwords,
 * accounts, factors, links, mail, attempt counters (Redis when REDIS_URL is set, so several
 * server processes share one budget; the database otherwise) and sessions.
 */
export interface IdentityLinks {
  readonly publicUrl: string;
  verifyEmail(token: string): string;
  resetPassword(token: string, realm: Realm): string;
  signIn(realm: Realm): string;
  resetRequest(realm: Realm): string;
  readonly staffInvitation: string;
}

/** The mails of sign-up, verification, reset and password change, with their links. */
export interface IdentityMessages {
  verification(to: string, token: Secret<string>): MailMessage;
  reset(to: string, token: Secret<string>, realm: Realm): MailMessage;
  accountExists(to: string, realm: Realm): MailMessage;
  passwordChanged(to: string, realm: Realm): MailMessage;
}

export interface IdentityServices {
  readonly keys: IdentityKeys;
  readonly passwords: PasswordService;
  /** Admission to password work: every route that checks or hashes a password runs inside it. */
  readonly gate: Gate;
  readonly accounts: AccountService;
  readonly totp: TotpService;
  readonly recovery: RecoveryCodeService;
  readonly tokens: TokenService;
  /** Links a shop sends a stored customer to claim their account. */
  readonly claims: ClaimService;
  readonly mailer: Mailer;
  readonly mail: MailQueue;
  readonly lockout: Lockout;
  /** Failed authentications (API key, bearer, session) per client address: counted before any credential is trusted. */
  readonly authFailures: AuthFailureThrottle;
  readonly sessions: SessionService;
  readonly tickets: TicketService;
  readonly passkeys: PasskeyService;
  readonly signIn: SignInService;
  /**
   * Whether one more mail of `kind` to this account fits its budget (5 an hour): a reset or
   * verification form cannot be used to flood someone's mailbox.
   */
  mailBudget(kind: string, accountId: string): Promise<boolean>;
  readonly authn: AuthnAudit;
  /**
   * Audits a use of a known session that has ended (OWASP vocabulary: `session_expired` for the use
   * that crossed its limit, `session_use_after_expire` after): the first use at once, then at most
   * one summary per session per minute carrying the count (`repeated_uses.<n>`); the sweep writes
   * the summaries still due when the uses stop.
   */
  deadSession(resolution: { reason: 'expired' | 'revoked'; accountId: string; sessionId: string; expiredNow: boolean }, requestId: string): Promise<void>;
  readonly shopName: string;
  readonly links: IdentityLinks;
  readonly messages: IdentityMessages;
  /** Forgets dead sessions, tickets, links and attempt counters now; returns how many rows went. */
  sweep(): Promise<number>;
  /** Sweeps every `everyMs` in the background (servers); stopped by close. */
  start(everyMs?: number): void;
  close(): Promise<void>;
}

/** HKDF-SHA256 of a base key under a label of its own (RFC 5869), like keys.ts does for the other identity keys. */
export function subKey(base: KeyObject, label: string): KeyObject {
  return createSecretKey(Buffer.from(hkdfSync('sha256', base, Buffer.alloc(0), `custos/identity/${label}`, 32)));
}

export function identityLinks(config: Pick<Config, 'publicUrl' | 'host' | 'port'>): IdentityLinks {
  const base = publicOrigin(config);
  const area = (realm: Realm) => (realm === 'staff' ? 'admin' : 'account');
  // Tokens travel in the fragment, which browsers never send to a server: no link secret in any access log.
  return {
    publicUrl: base,
    verifyEmail: (token) => `${base}/account/verify-email#token=${token}`,
    resetPassword: (token, realm) => `${base}/${area(realm)}/reset-password#token=${token}`,
    signIn: (realm) => `${base}/${area(realm)}/sign-in`,
    resetRequest: (realm) => `${base}/${area(realm)}/reset-password`,
    staffInvitation: `${base}/admin/accept-invitation`,
  };
}

export function createIdentityServices(deps: {
  config: Config;
  db: Kysely<Database>;
  clock: Clock;
  logger?: Logger | undefined;
  audit: AuditLog;
  /** The service key `identity`, every version newest first (or one key): only ever HKDF input. */
  base: KeyObject | KeyVersions;
  /** The blind-index key versions in force (or one fixed key). */
  blindIndex: BlindIndexKeys | KeyObject;
  /** Refuses sign-in of accounts that may not (suspended staff); looked up at sign-in time. */
  standing?: ((realm: Realm, account: AccountInfo) => Promise<void>) | undefined;
}): IdentityServices {
  const { config, db, clock, audit } = deps;
  const keys = deriveIdentityKeys({ base: deps.base, blindIndex: deps.blindIndex });
  const passwords = createPasswordService({
    policy: { maxLength: config.passwords.maxLength, contextWords: [config.shopName] },
    ...(config.passwords.hashConcurrency === undefined ? {} : { concurrency: { max: config.passwords.hashConcurrency } }),
  });
  const accounts = createAccountService({ db, clock, keys, passwords });
  // As many at once as argon2id hashes in parallel; during a flood (32 or more waiting), password work gets a quarter
  // of that: measured on 2 cores, 0.4 left vault reads at 0.75× of their rate alone under 200 wrong-password
  // connections, a quarter at 0.86–0.91× (docs/benchmarks.md).
  const gate = createGate({ max: config.passwords.hashConcurrency ?? defaultHashConcurrency(), queue: 1000, maxWaitMs: 10_000, floodShare: 0.25, floodAt: 32 });
  const recovery = createRecoveryCodeService({ db, clock, key: keys.recoveryMac });
  const totp = createTotpService({ db, clock, key: keys.totpSeal, recovery, issuer: config.shopName });
  const tokens = createTokenService({ db, clock, key: keys.tokenMac });
  const claims = createClaimService({ db, clock, mac: keys.tokenMac, emailSeal: keys.emailSeal });
  const links = identityLinks(config);
  const mailer = createMailer({
    smtpUrl: config.smtpUrl,
    outboxDir: join(config.dataDir, 'outbox'),
    from: mailSender(config, links.publicUrl),
  });
  const mail = createMailQueue({ mailer, logger: deps.logger });
  const redis = config.redisUrl === undefined ? undefined : new Redis(config.redisUrl.reveal(), { lazyConnect: false, maxRetriesPerRequest: 2 });
  const counters = redis === undefined ? createDatabaseCounters({ db }) : createRedisCounters({ redis });
  const lockMs = config.lockout.minutes * 60_000;
  const lockout = createLockout({
    counters,
    clock,
    key: keys.throttleMac,
    policy: {
      account: { limit: config.lockout.threshold, windowMs: 24 * 3_600_000, blockMs: lockMs, backoff: 1, maxBlockMs: lockMs },
      ip: { limit: config.lockout.ipLimit, windowMs: 15 * 60_000, blockMs: 60_000, backoff: 2, maxBlockMs: 3_600_000 },
      global: { limit: config.lockout.globalLimit, windowMs: 60_000, blockMs: 10_000, backoff: 2, maxBlockMs: 5 * 60_000 },
    },
  });
  const authFailures = createAuthFailureThrottle({
    counters,
    clock,
    key: keys.throttleMac,
    policy: { limit: config.lockout.authFailureLimit, windowMs: AUTH_FAILURE_WINDOW_MS, blockMs: 60_000, backoff: 2, maxBlockMs: 3_600_000 },
  });
  const hour = 3_600_000;
  const mailPolicy: BucketPolicy = { limit: 5, windowMs: hour, blockMs: hour, backoff: 1, maxBlockMs: hour };
  const s = config.sessions;
  // Sessions and sign-in tickets are looked up by their keyed hash under the newest identity key
  // version only: rotating the identity key signs every session out.
  const sessionKey = subKey(versionsOf(deps.base)[0].key, 'session-mac/v1');
  const tickets = createTicketService({ db, clock, key: sessionKey });
  const sessions = createSessionService({
    db,
    clock,
    key: sessionKey,
    policy: {
      customer: { idleMs: s.customerIdleMinutes * 60_000, absoluteMs: s.customerMaxHours * 3_600_000 },
      staff: { idleMs: s.staffIdleMinutes * 60_000, absoluteMs: s.staffMaxHours * 3_600_000 },
      reauthMs: s.reauthMinutes * 60_000,
    },
  });
  const publicUrl = new URL(links.publicUrl);
  const passkeys = createPasskeyService({ db, clock, rp: { rpId: publicUrl.hostname, rpName: config.shopName, origins: [links.publicUrl] } });
  const authn = authnAudit(audit);
  const signIn = createSignInService({
    accounts,
    lockout,
    sessions,
    tickets,
    gate,
    totp,
    recovery,
    passkeys,
    passkeyCount: async (accountId) => (await passkeys.list(accountId)).length,
    audit: authn,
    standing: deps.standing,
  });
  async function auditDeadUse(accountId: string, sessionId: string, entry: DeadUseEntry, requestId: string | undefined, expiredNow = false) {
    const account = await accounts.get(accountId).catch(() => undefined);
    await authn(expiredNow ? AUTHN_EVENTS.sessionExpired : AUTHN_EVENTS.sessionUseAfterExpire, {
      account,
      outcome: expiredNow ? 'success' : 'denied',
      requestId,
      session: sessionId,
      repeatedUses: entry.kind === 'summary' ? entry.count : undefined,
    });
  }
  async function deadSession(resolution: Parameters<IdentityServices['deadSession']>[0], requestId: string): Promise<void> {
    const expiredNow = resolution.reason === 'expired' && resolution.expiredNow;
    const entry = expiredNow ? ({ kind: 'first' } as const) : await sessions.deadUse(resolution.sessionId);
    if (entry !== undefined) await auditDeadUse(resolution.accountId, resolution.sessionId, entry, requestId, expiredNow);
  }
  async function summariseDeadUses(): Promise<number> {
    const due = await sessions.dueDeadUses();
    for (const d of due) await auditDeadUse(d.accountId, d.sessionId, { kind: 'summary', count: d.count }, undefined);
    return due.length;
  }

  let timer: NodeJS.Timeout | undefined;
  let sweeping: Promise<number> | undefined;
  async function sweep(): Promise<number> {
    const counterPolicy = (k: string) => authFailures.policyOf(k) ?? (k.startsWith('m:') ? mailPolicy : undefined);
    sweeping ??= (async () =>
      (await summariseDeadUses()) + (await sessions.sweep()) + (await tickets.sweep()) + (await tokens.sweep()) + (await claims.sweep()) + (await lockout.sweep(counterPolicy)))().finally(() => {
      sweeping = undefined;
    });
    return sweeping;
  }

  return {
    keys,
    passwords,
    gate,
    accounts,
    totp,
    recovery,
    tokens,
    claims,
    mailer,
    mail,
    lockout,
    authFailures,
    sessions,
    tickets,
    passkeys,
    signIn,
    authn,
    deadSession,
    async mailBudget(kind, accountId) {
      const key = `m:${createHmac('sha256', keys.throttleMac).update(`mail\u0000${kind}\u0000${accountId}`, 'utf8').digest('base64url')}`;
      const result = await counters.hit(key, mailPolicy, clock.now().getTime());
      return result.allowed;
    },
    shopName: config.shopName,
    links,
    messages: {
      verification: (to, token) =>
        verificationMail({ to, shopName: config.shopName, link: links.verifyEmail(token.reveal()), validForMs: TOKEN_TTL_MS.verify_email }),
      reset: (to, token, realm) =>
        passwordResetMail({ to, shopName: config.shopName, link: links.resetPassword(token.reveal(), realm), validForMs: TOKEN_TTL_MS.reset_password }),
      accountExists: (to, realm) =>
        accountExistsMail({ to, shopName: config.shopName, signInUrl: links.signIn(realm), resetUrl: links.resetRequest(realm) }),
      passwordChanged: (to, realm) => passwordChangedMail({ to, shopName: config.shopName, resetUrl: links.resetRequest(realm) }),
    },
    sweep,
    start(everyMs = 10 * 60_000) {
      if (timer !== undefined) return;
      timer = setInterval(() => {
        sweep().catch((error: unknown) => deps.logger?.warn({ code: (error as { code?: unknown }).code }, 'identity sweep failed'));
      }, everyMs);
      timer.unref();
    },
    async close() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      await sweeping?.catch(() => undefined);
      await mail.idle();
      mailer.close();
      await passwords.close();
      if (redis !== undefined) await redis.quit().catch(() => undefined);
    },
  };
}
