import { AppError, fail } from '../../../kernel/errors.ts';
import type { Secret } from '../../../kernel/secret.ts';
import type { AccountInfo, AccountService } from '../accounts/account-service.ts';
import { AUTHN_EVENTS } from '../audit-events.ts';
import { IdentityErrors } from '../errors.ts';
import type { Lockout } from '../throttling/lockout.ts';
import type { Realm } from '../passwords/password-policy.ts';
import type { RecoveryCodeService } from '../factors/recovery-codes.ts';
import type { AuthnAudit } from './session-audit.ts';
import { SessionErrors } from './session-errors.ts';
import type { SessionService, SessionView } from './session-service.ts';
import type { Gate } from './session-gate.ts';
import type { TicketService } from './session-tickets.ts';
import type { TotpService } from '../factors/totp-service.ts';

/**
 * Sign-in as a sequence of checks, HTTP-free so that routes stay thin and the bench can call it:
 * attempt budgets first (counted before the password is checked, so parallel guesses cannot
 * overrun them: PCI DSS 4.0.1 8.3.4), then the password (an unknown email costs a dummy argon2id
 * like a wrong password and answers the same: ASVS 6.3.8), then — when the account has one — the
 * second factor through a short-lived ticket, and only then a NEW session (ASVS 7.2.4: no token
 * from before sign-in survives it). Second-factor guesses have their own budget per account.
 */
export type SecondFactorProof =
  | { readonly kind: 'totp'; readonly code: Secret<string> }
  | { readonly kind: 'recovery_code'; readonly code: Secret<string> }
  | { readonly kind: 'passkey'; readonly response: unknown };

export type PrimaryProof = { readonly kind: 'password'; readonly password: Secret<string> } | { readonly kind: 'passkey'; readonly response: unknown };

/** What sign-in needs from the passkey service (identity's WebAuthn part). */
export interface PasskeyAssertions {
  /** Verifies an authentication response (for `accountId` when given); the account it proves. */
  verifyAuthentication(input: { response: unknown; accountId?: string | undefined }): Promise<{ accountId: string }>;
}

export interface Attempt {
  readonly ip: string | undefined;
  readonly device: string;
  readonly requestId: string;
}

export type SignInOutcome =
  | { readonly kind: 'session'; readonly account: AccountInfo; readonly token: Secret<string>; readonly session: SessionView }
  | { readonly kind: 'mfa'; readonly account: AccountInfo; readonly ticket: Secret<string>; readonly expiresAt: string; readonly methods: readonly SecondFactorProof['kind'][] };

export interface SignInService {
  /** `signal`: the caller went away; a sign-in still waiting for its turn is dropped. */
  withPassword(input: { realm: Realm; email: string; password: Secret<string>; signal?: AbortSignal | undefined } & Attempt): Promise<SignInOutcome>;
  /** Passwordless: a passkey with user verification is two factors in one (NIST SP 800-63B §3.1.7). */
  withPasskey(input: { realm: Realm; response: unknown } & Attempt): Promise<SignInOutcome & { kind: 'session' }>;
  /** Completes a sign-in that answered `mfa_required`. */
  secondFactor(input: { realm: Realm; ticket: string; proof: SecondFactorProof } & Attempt): Promise<SignInOutcome & { kind: 'session' }>;
  /** Re-authentication inside a session (ASVS 7.5.1); rotates the token. */
  stepUp(input: { session: SessionView; proof: PrimaryProof } & Attempt): Promise<{ token: Secret<string>; session: SessionView }>;
  /** Which second factors an account can answer with. */
  methods(accountId: string): Promise<SecondFactorProof['kind'][]>;
}

const mfaKey = (accountId: string) => `mfa:${accountId}`;

export function createSignInService(deps: {
  accounts: AccountService;
  lockout: Lockout;
  sessions: SessionService;
  tickets: TicketService;
  /** Admission to password work (session-gate.ts); sign-in and step-up by password wait their turn here. */
  gate: Gate;
  totp: TotpService;
  recovery: RecoveryCodeService;
  passkeys?: PasskeyAssertions | undefined;
  /** Each passkey of the account, for `methods`; undefined: none known. */
  passkeyCount?: ((accountId: string) => Promise<number>) | undefined;
  audit: AuthnAudit;
  /** Refuses accounts that may not sign in although the password is right (a suspended staff member). */
  standing?: ((realm: Realm, account: AccountInfo) => Promise<void>) | undefined;
}): SignInService {
  const { accounts, lockout, sessions, tickets, totp, recovery, audit } = deps;

  async function methods(accountId: string): Promise<SecondFactorProof['kind'][]> {
    const out: SecondFactorProof['kind'][] = [];
    if ((await totp.status(accountId)).enabled) out.push('totp');
    if ((await recovery.remaining(accountId)) > 0) out.push('recovery_code');
    if (deps.passkeyCount !== undefined && (await deps.passkeyCount(accountId)) > 0) out.push('passkey');
    return out;
  }

  /** Attempt budgets; a refusal is itself an authentication event. */
  async function budget(key: string, ip: string | undefined, account: AccountInfo | undefined, requestId: string) {
    try {
      return await lockout.attempt({ account: key, ip });
    } catch (error) {
      if (error instanceof AppError) await audit(AUTHN_EVENTS.loginFail, { account, outcome: 'denied', requestId, ip, key });
      throw error;
    }
  }

  async function open(realm: Realm, account: AccountInfo, a: Attempt, mfaVerified: boolean, authenticatedAt?: Date) {
    if (deps.standing !== undefined) await deps.standing(realm, account);
    const created = await sessions.create({ accountId: account.id, realm, device: a.device, mfaVerified, ...(authenticatedAt ? { authenticatedAt } : {}) });
    return { kind: 'session' as const, account, ...created };
  }

  async function checkSecondFactor(account: AccountInfo, proof: SecondFactorProof, a: Attempt): Promise<void> {
    await budget(mfaKey(account.id), a.ip, account, a.requestId);
    try {
      if (proof.kind === 'totp') await totp.verify(account.id, proof.code);
      else if (proof.kind === 'recovery_code') {
        await recovery.consume(account.id, proof.code);
        await audit(AUTHN_EVENTS.recoveryCodeUsed, { account, outcome: 'success', requestId: a.requestId });
      } else {
        if (deps.passkeys === undefined) fail(IdentityErrors.IDENTITY_PASSKEY_INVALID, 'passkeys are not available');
        await deps.passkeys.verifyAuthentication({ response: proof.response, accountId: account.id });
      }
    } catch (error) {
      if (error instanceof AppError) {
        const reused = error.code === IdentityErrors.IDENTITY_TOTP_REPLAYED.code || error.code === IdentityErrors.IDENTITY_RECOVERY_CODE_REUSED.code;
        await audit(reused ? AUTHN_EVENTS.tokenReuse : AUTHN_EVENTS.loginFail, { account, outcome: 'failure', requestId: a.requestId, ip: a.ip, key: mfaKey(account.id) });
      }
      throw error;
    }
    await lockout.clear(mfaKey(account.id));
  }

  async function withPassword({ realm, email, password, signal: _signal, ...a }: Parameters<SignInService['withPassword']>[0]): Promise<SignInOutcome> {
    const key = accounts.lockoutKey(realm, email);
    const known = await accounts.findByEmail(realm, email);
    const before = await lockout.status(key);
    const { remaining } = await budget(key, a.ip, known, a.requestId);
    const account = await accounts.authenticate({ realm, email, password });
    if (account === undefined) {
      const seen = { requestId: a.requestId, ip: a.ip, key };
      await audit(AUTHN_EVENTS.loginFail, { account: known, outcome: 'failure', ...seen });
      if (remaining === 0) {
        await audit(AUTHN_EVENTS.loginFailMax, { account: known, outcome: 'failure', ...seen });
        await audit(AUTHN_EVENTS.loginLock, { account: known, outcome: 'denied', ...seen });
      }
      fail(SessionErrors.IDENTITY_SIGNIN_FAILED, 'the email or the password is wrong');
    }
    await lockout.clear(key);
    if (await accounts.hasSecondFactor(account.id)) {
      if (deps.standing !== undefined) await deps.standing(realm, account);
      const { ticket, expiresAt } = await tickets.issue(account.id, realm);
      return { kind: 'mfa', account, ticket, expiresAt, methods: await methods(account.id) };
    }
    const opened = await open(realm, account, a, false);
    const event = before.attempts > 0 ? AUTHN_EVENTS.loginSuccessAfterFail : AUTHN_EVENTS.loginSuccess;
    await audit(event, { account, outcome: 'success', requestId: a.requestId, ip: a.ip, key });
    return opened;
  }

  return {
    methods,

    withPassword: (input) => deps.gate.run(() => withPassword(input), input.signal),

    async withPasskey({ realm, response, ...a }) {
      if (deps.passkeys === undefined) fail(IdentityErrors.IDENTITY_PASSKEY_INVALID, 'passkeys are not available');
      let accountId: string;
      try {
        ({ accountId } = await deps.passkeys.verifyAuthentication({ response }));
      } catch (error) {
        if (error instanceof AppError) await audit(AUTHN_EVENTS.loginFail, { account: undefined, outcome: 'failure', requestId: a.requestId, ip: a.ip });
        throw error;
      }
      const account = await accounts.get(accountId);
      if (account.realm !== realm) fail(IdentityErrors.IDENTITY_PASSKEY_INVALID, 'the passkey does not belong to this realm');
      const opened = await open(realm, account, a, true);
      await audit(AUTHN_EVENTS.loginSuccess, { account, outcome: 'success', requestId: a.requestId, ip: a.ip });
      return opened;
    },

    async secondFactor({ realm, ticket, proof, ...a }) {
      const pending = await tickets.peek(realm, ticket);
      if (pending === undefined) fail(SessionErrors.IDENTITY_MFA_TICKET_INVALID, 'sign in again');
      const account = await accounts.get(pending.accountId);
      try {
        await checkSecondFactor(account, proof, a);
      } catch (error) {
        if (error instanceof AppError && error.code !== IdentityErrors.IDENTITY_ACCOUNT_LOCKED.code && error.code !== IdentityErrors.IDENTITY_THROTTLED.code)
          await tickets.fail(ticket);
        throw error;
      }
      const used = await tickets.consume(realm, ticket);
      if (used === undefined) fail(SessionErrors.IDENTITY_MFA_TICKET_INVALID, 'sign in again');
      const opened = await open(realm, account, a, true, new Date(used.createdAt));
      await audit(AUTHN_EVENTS.loginSuccess, { account, outcome: 'success', requestId: a.requestId, ip: a.ip });
      return opened;
    },

    async stepUp({ session, proof, ...a }) {
      const account = await accounts.get(session.accountId);
      if (proof.kind === 'password') {
        const password = proof.password;
        await deps.gate.run(async () => {
          const key = accounts.lockoutKey(account.realm, account.email);
          const { remaining } = await budget(key, a.ip, account, a.requestId);
          const ok = await accounts.authenticate({ realm: account.realm, email: account.email, password });
          if (ok === undefined) {
            await audit(AUTHN_EVENTS.loginFail, { account, outcome: 'failure', requestId: a.requestId, ip: a.ip, key });
            if (remaining === 0) await audit(AUTHN_EVENTS.loginLock, { account, outcome: 'denied', requestId: a.requestId, ip: a.ip, key });
            fail(SessionErrors.IDENTITY_SIGNIN_FAILED, 'the password is wrong');
          }
          await lockout.clear(key);
        });
      } else {
        await checkSecondFactor(account, { kind: 'passkey', response: proof.response }, a);
      }
      const rotated = await sessions.rotate(session, { authenticated: true, ...(proof.kind === 'passkey' ? { mfaVerified: true } : {}) });
      if (rotated === undefined) fail(SessionErrors.IDENTITY_SESSION_REQUIRED, 'the session ended; sign in again');
      await audit(AUTHN_EVENTS.sessionRenewed, { account, outcome: 'success', requestId: a.requestId });
      return rotated;
    },
  };
}
