import { defineErrors, registerErrors } from '../../kernel/errors.ts';

/**
 * Every code the identity services answer with. Messages name rules and fields, never values: no
 * email, password, code or token ever reaches a message. Sign-in paths answer unknown accounts,
 * wrong passwords and locked identifiers alike (ASVS 6.3.8), which is why the lockout is keyed to
 * the identifier typed in, not to a row that may not exist.
 */
export const IdentityErrors = defineErrors({
  IDENTITY_PASSWORD_TOO_SHORT: {
    status: 400,
    description:
      'The password is shorter than the minimum for this account: 15 characters while it is the only factor, 8 with a second factor, 12 for staff (NIST SP 800-63B §3.1.1.2, PCI DSS 8.3.6). `details.minimum` says how many.',
  },
  IDENTITY_PASSWORD_TOO_LONG: {
    status: 400,
    description: 'The password is longer than the longest accepted (256 characters by default; never truncated). `details.maximum` says how many.',
  },
  IDENTITY_PASSWORD_BREACHED: {
    status: 400,
    description: 'The password is on the list of common and breached passwords (NIST SP 800-63B §3.1.1.2, ASVS 6.2.4).',
  },
  IDENTITY_PASSWORD_CONTEXT: {
    status: 400,
    description: "The password contains the account's email name or the shop's name (ASVS 6.2.12).",
  },
  IDENTITY_PASSWORD_MALFORMED: { status: 400, description: 'The password is not well-formed Unicode text.' },
  IDENTITY_EMAIL_INVALID: { status: 400, description: 'The email address is not a well-formed address.' },
  IDENTITY_EMAIL_TAKEN: { status: 409, description: 'An account of this realm already uses that email address.' },
  IDENTITY_ACCOUNT_NOT_FOUND: { status: 404, description: 'No account with that id.' },
  IDENTITY_EMAIL_UNVERIFIED: {
    status: 403,
    description:
      "The account's email address is not confirmed yet; its customer data is linked once it is (open the link from the verification mail, or ask for a new one).",
  },
  IDENTITY_INVITATION_NO_EMAIL: { status: 409, description: 'The customer has no email address stored to send the invitation to; nothing was sent.' },
  IDENTITY_CLAIM_CONFLICT: {
    status: 409,
    description: 'The account of this address is already linked to another customer record; nothing was changed and the link was not spent.',
  },
  IDENTITY_TOTP_INVALID: { status: 401, description: 'The authenticator code is wrong or outside the accepted time window.' },
  IDENTITY_TOTP_REPLAYED: {
    status: 401,
    description: 'The authenticator code was already used (each code is accepted once, ASVS 6.5.1); wait for the next one.',
  },
  IDENTITY_TOTP_NOT_ENABLED: { status: 409, description: 'The account has no authenticator app turned on.' },
  IDENTITY_TOTP_ALREADY_ENABLED: {
    status: 409,
    description: 'An authenticator app is already turned on; turn it off before enrolling another.',
  },
  IDENTITY_TOTP_NOT_STARTED: { status: 409, description: 'No authenticator enrolment is waiting for confirmation.' },
  IDENTITY_RECOVERY_CODE_INVALID: { status: 401, description: 'The recovery code is not one of this account’s codes.' },
  IDENTITY_RECOVERY_CODE_REUSED: {
    status: 401,
    description: 'The recovery code was already used; each recovery code works once (ASVS 6.5.1).',
  },
  IDENTITY_PASSKEY_CHALLENGE_INVALID: {
    status: 400,
    description: 'The passkey response answers no pending challenge: unknown, already used, expired, or for another account.',
  },
  IDENTITY_PASSKEY_INVALID: {
    status: 401,
    description: 'The passkey response did not verify (signature, origin, relying party, flags, or unknown credential).',
  },
  IDENTITY_PASSKEY_COUNTER_REGRESSED: {
    status: 401,
    description: 'The passkey signature counter did not advance: the response was replayed or the authenticator was cloned.',
  },
  IDENTITY_PASSKEY_NOT_FOUND: { status: 404, description: 'The account has no passkey with that id.' },
  IDENTITY_TOKEN_INVALID: {
    status: 400,
    description: 'The link is malformed, unknown, forged, expired or meant for something else.',
  },
  IDENTITY_TOKEN_REUSED: { status: 400, description: 'The link was already used; each link works once.' },
  IDENTITY_ACCOUNT_LOCKED: {
    status: 423,
    description:
      'Too many consecutive failed sign-ins for this identifier: locked for a while (PCI DSS 8.3.4). Password reset keeps working. `details.retry_after_seconds` says how long.',
  },
  IDENTITY_THROTTLED: {
    status: 429,
    description: 'Too many sign-in attempts from this address, or overall; try again later. `details.retry_after_seconds` says when.',
  },
  IDENTITY_AUTH_THROTTLED: {
    status: 429,
    description:
      'Too many requests from this address (IPv6 per /64) whose API key, bearer token or session was not accepted; refused before any credential is checked until the block ends. `details.retry_after_seconds` says when.',
  },
  IDENTITY_BUSY: {
    status: 503,
    description: 'Too many password checks are already waiting; try again in a moment (bounded hashing concurrency).',
  },
  IDENTITY_MAIL_FAILED: { status: 502, description: 'The mail server refused or could not be reached; nothing was sent.' },
});
registerErrors(IdentityErrors);
