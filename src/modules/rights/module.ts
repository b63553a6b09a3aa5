/**
 * The rights capability at a glance (CONVENTIONS.md, module layout).
 *
 * Owns: tables rights_requests and rights_request_events (migration 0014-rights; tables.ts); the
 * routes under /v1/rights, `DELETE /v1/customers/{id}` (an erasure request) in the API-key scope
 * of src/app.ts, and /v1/me/rights-requests in the customer session scope (routes.ts); error
 * codes RIGHTS_* (errors.ts); deadline arithmetic (deadlines.ts: GDPR Art. 12(3) counted by
 * Regulation 1182/71, CCPA 45 days and business-day acknowledgements).
 *
 * Personal data it holds: none beyond the customer id a request is about, the actor refs of who
 * moved it, and the reasons staff write for denials and extensions (told to the customer, so they
 * must not quote other people's data). How a requester was verified is a method name, never a
 * document.
 *
 * Depends on: vault (whether a customer exists: vault/subjects.ts), audit (every transition in the
 * same transaction), staff (the `rights.manage` permission), identity (the customer's session and
 * linked customer), config (default jurisdiction, holidays). Processor notification (Art. 19) is
 * not wired yet: it needs the consent capability's processor registry.
 */

/** The inventory purpose an API key needs to file and work data-subject requests. */
export const RIGHTS_PURPOSE = 'rights';

/** Every audit action rights writes: one per state a request enters. */
export const RIGHTS_AUDIT_ACTIONS = [
  'rights.request.received',
  'rights.request.verifying_identity',
  'rights.request.in_progress',
  'rights.request.extended',
  'rights.request.completed',
  'rights.request.denied',
] as const;
export type RightsAuditAction = (typeof RIGHTS_AUDIT_ACTIONS)[number];
