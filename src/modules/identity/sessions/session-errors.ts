import { defineErrors, registerErrors } from '../../../kernel/errors.ts';

/**
 * The codes of sessions and of the sign-in API. Sign-in failures have one code whatever went
 * wrong (unknown email or wrong password: ASVS 6.3.8), and a session that is missing, forged,
 * expired or revoked is one code too, so that the answer says nothing about which.
 */
export const SessionErrors = defineErrors({
  IDENTITY_SIGNIN_FAILED: {
    status: 401,
    description: 'The email or the password is wrong (the same answer whether or not an account exists, ASVS 6.3.8).',
  },
  IDENTITY_SESSION_REQUIRED: {
    status: 401,
    description: 'No valid session: none was sent, or it is unknown, expired (idle or absolute limit) or revoked. Sign in again.',
  },
  IDENTITY_SESSION_NOT_FOUND: { status: 404, description: 'This account has no active session with that id.' },
  IDENTITY_REAUTH_REQUIRED: {
    status: 401,
    description:
      'This action (changing a password or a factor) needs a recent sign-in: confirm with POST …/auth/step-up first (ASVS 7.5.1). `details.within_seconds` says how recent.',
  },
  IDENTITY_MFA_TICKET_INVALID: {
    status: 401,
    description: 'The MFA ticket is missing, unknown, expired, already used or spent by too many wrong codes: sign in again.',
  },
  IDENTITY_MFA_METHOD_INVALID: {
    status: 400,
    description: 'Send exactly one of `code`, `recovery_code` or `passkey` to complete the sign-in or the step-up.',
  },
  IDENTITY_CSRF_REJECTED: {
    status: 403,
    description:
      'A state-changing request carried a session cookie (or would set one) but came from another origin, or did not say where it came from (Origin / Sec-Fetch-Site).',
  },
  IDENTITY_SUBJECT_FORBIDDEN: {
    status: 403,
    description: "A customer session reads only its own customer's data; this read names another customer.",
  },
});
registerErrors(SessionErrors);
