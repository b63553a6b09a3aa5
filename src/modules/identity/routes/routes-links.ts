import { AppError, fail } from '../../../kernel/errors.ts';
import { AUTHN_EVENTS } from '../audit-events.ts';
import { IdentityErrors } from '../errors.ts';
import type { AuthnAudit } from '../sessions/session-audit.ts';

/** Helpers of the routes that spend a mailed link (verification, claim). */

/** A password policy refusal as the error its rule names. */
export function refusePassword(refusal: { code: string; details?: Record<string, unknown> | undefined }): never {
  const spec = Object.values(IdentityErrors).find((e) => e.code === refusal.code) ?? IdentityErrors.IDENTITY_PASSWORD_MALFORMED;
  fail(spec, 'the password does not meet the password policy', refusal.details);
}

/** Runs `use`; a link that was already used is recorded as its own event (OWASP `authn_token_reuse`). */
export async function spendingLink<T>(authn: AuthnAudit, requestId: string, use: () => Promise<T>): Promise<T> {
  try {
    return await use();
  } catch (error) {
    if (error instanceof AppError && error.code === IdentityErrors.IDENTITY_TOKEN_REUSED.code)
      await authn(AUTHN_EVENTS.tokenReuse, { account: undefined, outcome: 'failure', requestId });
    throw error;
  }
}
