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
  RIGHTS_EXPORT_UNAVAILABLE: { status: 404, description: 'The customer the export was made for no longer exists (erased); nothing was sent.' },
  RIGHTS_PURPOSE_UNKNOWN: { status: 400, description: '`allow_purposes` names a purpose the data inventory does not declare; nothing was recorded.' },
  RIGHTS_NOT_RESTRICTED: {
    status: 409,
    description: 'No restriction of processing without a scheduled end is in force for this customer, so there is nothing to lift; nothing changed.',
  },
  RIGHTS_RESTRICTION_NOTICE_FAILED: {
    status: 409,
    description: 'The customer could not be told that their restriction will be lifted (no email address, or the mail failed; GDPR Art. 18(3)); the restriction stays.',
  },
});
registerErrors(RightsErrors);
