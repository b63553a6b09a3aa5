/**
 * The rights capability at a glance (CONVENTIONS.md, module layout).
 *
 * Owns: tables rights_requests and rights_request_events (migration 0014-rights; tables.ts), and
 * rights_exports, rights_restrictions, shopify_webhooks and shop_erasures (0021-rights-export); the
 * routes under /v1/rights, `DELETE /v1/customers/{id}` (an erasure request) in the API-key scope
 * of src/app.ts, and /v1/me/rights-requests in the customer session scope (routes.ts); error
 * codes RIGHTS_* (errors.ts); deadline arithmetic (deadlines.ts: GDPR Art. 12(3) counted by
 * Regulation 1182/71, CCPA 45 days and business-day acknowledgements); the erasure plan from the
 * inventory (erasure-plan.ts) and its resumable run (erasure.ts), with a receipt signed under the
 * `receipts` service key (receipt.ts); access and portability exports (export.ts: generated from
 * the inventory's `export` marks, export-document.ts: the streamed ZIP, export-links.ts: signed
 * single-use links, routes-export.ts: the public download); restriction of processing
 * (restrictions.ts: the gate the policy asks on every read, the lift told to the customer first;
 * routes-restriction.ts); Shopify's compliance webhooks (shopify.ts, routes-shopify.ts: in a scope
 * of their own at /v1/integrations/shopify/webhooks) and the shop erasures they record, run only
 * after two staff approvals (shop-erasure.ts). The vault side of erasure (records, hold keys, shredding)
 * is src/modules/vault/erasure.ts, which owns the table held_records.
 *
 * Personal data it holds: none beyond the customer id a request is about, the actor refs of who
 * moved it, and the reasons staff write for denials and extensions (told to the customer, so they
 * must not quote other people's data). How a requester was verified is a method name, never a
 * document.
 *
 * Depends on: vault (whether a customer exists: vault/audience.ts), audit (every transition in the
 * same transaction), staff (the `rights.manage` permission), identity (the customer's session and
 * linked customer; erasure closes its accounts), crypto (the key store destroys the customer's
 * data key), config (default jurisdiction, holidays, bookkeeping country). Processors are told of
 * an erasure (Art. 19) through the `ProcessorNotifier` the erasure service takes: the server wires
 * src/modules/processors/notices.ts (signed webhooks to each recipient's endpoint, retried, confirmed).
 */

/** The inventory purpose an API key needs to file and work data-subject requests. */
export const RIGHTS_PURPOSE = 'rights';

/** Every audit action rights writes: one per state a request enters, and per step of an erasure, an export download and a restriction. */
export const RIGHTS_AUDIT_ACTIONS = [
  'rights.request.received',
  'rights.request.verifying_identity',
  'rights.request.in_progress',
  'rights.request.extended',
  'rights.request.completed',
  'rights.request.denied',
  'rights.erasure.accepted',
  'rights.erasure.read_refused',
  'rights.erasure.planned',
  'rights.erasure.held',
  'rights.erasure.account_closed',
  'rights.erasure.shredded',
  'rights.export.downloaded',
  'rights.export.link_expired',
  'rights.export.link_used',
  'rights.export.link_invalid',
  'rights.restriction.read_refused',
  'rights.restriction.lift_noticed',
  'rights.shopify.signature_invalid',
  'rights.shopify.no_data_held',
  'rights.shop_erasure.recorded',
  'rights.shop_erasure.approved',
  'rights.shop_erasure.confirmed',
  'rights.shop_erasure.completed',
] as const;
export type RightsAuditAction = (typeof RIGHTS_AUDIT_ACTIONS)[number];
