/**
 * Event names of the OWASP Logging Vocabulary Cheat Sheet for what identity does, so that every
 * writer of the audit log spells them the same way (ASVS 16.3.1: log authentication events, success
 * and failure; 16.3.2: log failed authorisation). The audit module stores them as `action`; this file
 * depends on nothing so it can be imported from anywhere. Four names extend the vocabulary in its
 * own style, because it has none for them: `authn_mfa_enabled`, `authn_mfa_disabled`,
 * `authn_mfa_recovery_code_used` and `session_revoked`.
 *
 * Which service outcome maps to which event:
 * - password verified → `authn_login_success` (or `authn_login_successafterfail` after failures)
 * - wrong password, unknown account → `authn_login_fail`; `Lockout.attempt` answered remaining 0 and the
 *   attempt failed → `authn_login_fail_max` and `authn_login_lock`
 * - IDENTITY_TOTP_REPLAYED, IDENTITY_TOKEN_REUSED, IDENTITY_RECOVERY_CODE_REUSED → `authn_token_reuse`
 * - TOTP confirmed, passkey registered → `authn_mfa_enabled`; TOTP turned off, passkey removed → `authn_mfa_disabled`
 * - verification or reset link issued → `authn_token_created`; superseded → `authn_token_revoked`
 * - a session used after it ended: the use that found it expired → `session_expired`; the first use
 *   after that, or of a revoked session → `session_use_after_expire`; later uses → at most one
 *   `session_use_after_expire` a minute per session, its one field `repeated_uses.<n>` the count
 */
export const AUTHN_EVENTS = {
  loginSuccess: 'authn_login_success',
  loginSuccessAfterFail: 'authn_login_successafterfail',
  loginFail: 'authn_login_fail',
  loginFailMax: 'authn_login_fail_max',
  loginLock: 'authn_login_lock',
  passwordChange: 'authn_password_change',
  passwordChangeFail: 'authn_password_change_fail',
  impossibleTravel: 'authn_impossible_travel',
  tokenCreated: 'authn_token_created',
  tokenRevoked: 'authn_token_revoked',
  tokenReuse: 'authn_token_reuse',
  tokenDelete: 'authn_token_delete',
  mfaEnabled: 'authn_mfa_enabled',
  mfaDisabled: 'authn_mfa_disabled',
  recoveryCodeUsed: 'authn_mfa_recovery_code_used',
  sessionCreated: 'session_created',
  sessionRenewed: 'session_renewed',
  sessionExpired: 'session_expired',
  sessionRevoked: 'session_revoked',
  sessionUseAfterExpire: 'session_use_after_expire',
  userCreated: 'user_created',
  userUpdated: 'user_updated',
  userDeleted: 'user_deleted',
  excessUse: 'excess_rate_limit_exceeded',
} as const;

export type AuthnEvent = (typeof AUTHN_EVENTS)[keyof typeof AUTHN_EVENTS];

/** Every event name above, for schemas and docs. */
export const AUTHN_EVENT_NAMES: readonly AuthnEvent[] = Object.values(AUTHN_EVENTS);
