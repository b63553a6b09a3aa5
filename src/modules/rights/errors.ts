import { defineErrors, registerErrors } from '../../kernel/errors.ts';

export const RightsErrors = defineErrors({
  RIGHTS_PURPOSE_REQUIRED: {
    status: 403,
    description: 'Data-subject requests need an API key scoped to the `rights` purpose (or a staff session holding `rights.manage`).',
  },
  RIGHTS_KIND_UNKNOWN: {
    status: 400,
    description: 'The request kind is not one of access, portability, rectification, erasure, restriction, objection; nothing was recorded.',
  },
  RIGHTS_CUSTOMER_NOT_FOUND: { status: 404, description: 'No customer with that id; no request was recorded.' },
  RIGHTS_REQUEST_NOT_FOUND: { status: 404, description: 'No data-subject request with that id (or not visible to this caller).' },
  RIGHTS_TRANSITION_INVALID: {
    status: 409,
    description: 'The request cannot move to that state from the one it is in (docs/rights-requests.md); nothing changed.',
  },
  RIGHTS_REASON_REQUIRED: { status: 400, description: 'Denying or extending a request needs the reason told to the customer; nothing changed.' },
  RIGHTS_VERIFICATION_REQUIRED: {
    status: 400,
    description: 'Starting work on a request whose identity check is pending needs the method by which the requester was verified; nothing changed.',
  },
  RIGHTS_ERASURE_NOT_RUN: {
    status: 409,
    description: 'An erasure request completes by running the erasure (`POST /v1/rights/requests/{id}/erasure`), which signs its receipt; nothing changed.',
  },
  RIGHTS_NOT_ERASURE: { status: 409, description: 'Only an erasure request can be run as an erasure; nothing changed.' },
  RIGHTS_EXTENSION_TOO_LATE: {
    status: 409,
    description: 'A request can be extended once, and only before its first deadline has passed (GDPR Art. 12(3)); nothing changed.',
  },
  RIGHTS_EXPORT_LINK_INVALID: {
    status: 403,
    description: 'The download link is not one Custos made (altered, truncated or forged); nothing was sent.',
  },
  RIGHTS_EXPORT_LINK_EXPIRED: { status: 410, description: 'The download link has expired; file a new access or portability request for a new one.' },
  RIGHTS_EXPORT_LINK_USED: {
    status: 410,
    description: 'The download link was used already (each works once); file a new access or portability request for a new one.',
  },
  RIGHTS_EXPORT_UNAVAILABLE: { status: 404, description: 'The customer the export was made for no longer exists (erased), or their erasure was accepted and is completing; nothing was sent.' },
  RIGHTS_PURPOSE_UNKNOWN: { status: 400, description: '`allow_purposes` names a purpose the data inventory does not declare; nothing was recorded.' },
  RIGHTS_NOT_RESTRICTED: {
    status: 409,
    description: 'No restriction of processing without a scheduled end is in force for this customer, so there is nothing to lift; nothing changed.',
  },
  RIGHTS_RESTRICTION_NOTICE_FAILED: {
    status: 409,
    description: 'The customer could not be told that their restriction will be lifted (no email address, or the mail failed; GDPR Art. 18(3)); the restriction stays.',
  },
  RIGHTS_SHOPIFY_NOT_CONFIGURED: { status: 503, description: 'Shopify compliance webhooks are not accepted: CUSTOS_SHOPIFY_WEBHOOK_SECRET is not set; nothing was recorded.' },
  RIGHTS_SHOPIFY_SIGNATURE_INVALID: {
    status: 401,
    description: 'X-Shopify-Hmac-Sha256 is missing or is not the HMAC-SHA256 of the body under the app secret; nothing was recorded.',
  },
  RIGHTS_SHOPIFY_SHOP_MISMATCH: {
    status: 403,
    description: 'The webhook is for another shop than CUSTOS_SHOPIFY_SHOP_DOMAIN (or its header and body name different shops); nothing was recorded.',
  },
  RIGHTS_SHOPIFY_WEBHOOK_INVALID: {
    status: 400,
    description: 'A signed webhook without X-Shopify-Webhook-Id or X-Shopify-Topic, or whose body is not the shape Shopify documents for its topic; nothing was recorded.',
  },
  RIGHTS_SHOPIFY_TOPIC_UNKNOWN: { status: 400, description: 'The topic is not one of customers/data_request, customers/redact, shop/redact; nothing was recorded.' },
  RIGHTS_SHOP_ERASURE_NOT_FOUND: { status: 404, description: 'No shop erasure with that id.' },
  RIGHTS_SHOP_ERASURE_STAFF_ONLY: { status: 403, description: 'A shop erasure is approved by two staff members holding rights.manage, never by an API key; nothing changed.' },
  RIGHTS_SHOP_ERASURE_SECOND_APPROVER: {
    status: 409,
    description: 'The second approval of a shop erasure must come from another staff member than the first; nothing changed.',
  },
  RIGHTS_SHOP_ERASURE_STATE: { status: 409, description: 'The shop erasure is not waiting for an approval (already confirmed or completed); nothing changed.' },
});
registerErrors(RightsErrors);
