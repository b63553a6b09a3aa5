import { sourceOf } from '../../../kernel/security-events.ts';
import type { AuditLog } from '../../audit/service.ts';
import type { AuthnEvent } from '../audit-events.ts';

/**
 * Writes authentication events to the audit log under the OWASP Logging Vocabulary names of
 * audit-events.ts (ASVS 16.3.1: every authentication event, success and failure; 16.3.2: failed
 * authorisation). The audit log wants dotted actions, so each is `identity.<name>`
 * (`identity.authn_login_fail`). The subject is the account's vault customer when it has one — so
 * a customer sees their own sign-ins in their access log — and the account otherwise. An attempt
 * on an unknown email names no one: actor `anonymous`, no subject, never the typed address.
 */
export interface AuthnSubject {
  readonly id: string;
  readonly customer_id: string | null;
}

export type AuthnAudit = (
  event: AuthnEvent,
  input: {
    account: AuthnSubject | undefined;
    outcome: 'success' | 'denied' | 'failure';
    requestId?: string | undefined;
    /** The session (`ses_…`) the event is about, as the entry's record. */
    session?: string | undefined;
    /** A summary of this many repeated uses, recorded as the entry's one field `repeated_uses.<n>` (a count, never a value). */
    repeatedUses?: number | undefined;
    /** The client address: told to detection with the entry (as `sourceOf` keys it), never written to the log. */
    ip?: string | undefined;
    /** The attempt budget's key (realm and the keyed hash of the typed email, or the account's second-factor key): detection counts distinct accounts by it, also unknown ones. */
    key?: string | undefined;
  },
) => Promise<void>;

export function authnAudit(audit: Pick<AuditLog, 'append'>): AuthnAudit {
  return async (event, { account, outcome, requestId, session, repeatedUses, ip, key }) => {
    const context = ip === undefined && key === undefined ? undefined : { source: sourceOf(ip), ...(key === undefined ? {} : { detail: { account_key: key } }) };
    await audit.append(
      {
      actor: account === undefined ? 'anonymous' : `account:${account.id}`,
      action: `identity.${event}`,
      subjectId: account === undefined ? null : (account.customer_id ?? account.id),
      ...(session === undefined ? {} : { recordId: session }),
      ...(repeatedUses === undefined ? {} : { fields: [`repeated_uses.${repeatedUses}`] }),
      outcome,
      requestId: requestId ?? null,
      },
      context,
    );
  };
}
