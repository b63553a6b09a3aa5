import { AUTHN_EVENT_NAMES } from './audit-events.ts';

/**
 * The identity capability at a glance (CONVENTIONS.md, module layout). Its files are grouped by
 * what they are: accounts/ (accounts, email, one-time links), passwords/ (policy, strength,
 * hashing), sessions/ (sign-in, sessions, MFA tickets, guards), factors/ (TOTP, recovery codes,
 * passkeys), throttling/ (lockout and attempt counters), mail/ (mailer and messages), routes/ (HTTP).
 *
 * Owns: tables identity_accounts, identity_totp, identity_recovery_codes, identity_passkeys,
 * identity_webauthn_challenges, identity_tokens, identity_throttles (migration 0002-identity;
 * tables.ts) and identity_sessions, identity_mfa_tickets (migration 0004-sessions;
 * sessions/session-tables.ts) and identity_claims, the links a shop sends a stored customer to claim
 * their account (migration 0006-one-record-per-person; routes/routes-claim.ts); the routes under /v1/auth and /v1/me (customers) and
 * /v1/staff/auth (staff), each realm in its own Fastify scope (routes/routes.ts); the session
 * cookies `__Host-custos_session` and `__Host-custos_staff` (src/http/session.ts) and the origin
 * check for cookie-borne unsafe requests (src/http/csrf.ts); error codes IDENTITY_* (errors.ts,
 * sessions/session-errors.ts).
 *
 * Personal data it holds: the sign-in email, AES-256-GCM sealed under the identity email key and
 * bound to the account id, found by an HMAC-SHA256 blind index of the normalised address; nothing
 * else in the clear. Passwords are argon2id PHC strings; TOTP secrets are sealed; recovery codes,
 * one-time link secrets, session tokens and MFA tickets are kept only as keyed hashes; attempt
 * counters are keyed by a hash of the account or address, never the email or IP; a session's
 * device is a coarse label ("Firefox on Linux"), never the User-Agent. A customer account points
 * at its vault customer (`customer_id`); the profile itself lives in the vault.
 *
 * Depends on: vault (the customer's own data for /v1/me, through the policy as that customer),
 * policy (the customer's self guard), staff (a member's standing at sign-in, the staff actor),
 * audit (every authentication event), crypto (AEAD, blind index), config (session limits,
 * password policy, lockout), a mail transport (SMTP, or the outbox folder).
 */

/**
 * Every audit action identity writes: the OWASP Logging Vocabulary events of audit-events.ts,
 * and `identity.session_revoked` when a staff member's sessions end because their standing changed.
 * (A staff session refused for lack of a second factor is recorded as staff's
 * `staff.access.mfa_required`, see staff/module.ts.)
 */
export const IDENTITY_AUDIT_ACTIONS = [...AUTHN_EVENT_NAMES, 'identity.session_revoked'] as const;
