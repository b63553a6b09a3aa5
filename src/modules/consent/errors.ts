import { defineErrors, registerErrors } from '../../kernel/errors.ts';

export const ConsentErrors = defineErrors({
  CONSENT_PURPOSE_UNKNOWN: { status: 400, description: 'The purpose is not declared in the inventory; nothing was recorded.' },
  CONSENT_PURPOSE_NOT_CONSENT_BASED: {
    status: 400,
    description: "The purpose's legal basis is not consent, so there is no consent to grant or withdraw; nothing was recorded.",
  },
  CONSENT_NOTICE_VERSION_UNKNOWN: { status: 400, description: 'The notice version was never published by Custos; nothing was recorded.' },
  CONSENT_SOURCE_INVALID: {
    status: 400,
    description: 'The source is not one this caller may record (or a Global Privacy Control signal that grants); nothing was recorded.',
  },
  CONSENT_SUBJECT_NOT_FOUND: { status: 404, description: 'No customer with that id; nothing was recorded.' },
  CONSENT_RECEIPT_INVALID: {
    status: 400,
    description: 'The consent receipt is malformed, signed by an unknown key, or its signature does not verify (tampered).',
  },
  CONSENT_PURPOSE_NOT_OBJECTABLE: {
    status: 400,
    description: 'An objection (GDPR Art. 21) is to a purpose based on legitimate interests; consent-based purposes are withdrawn instead. Nothing was recorded.',
  },
  CONSENT_OBJECTION_NOT_PENDING: { status: 409, description: 'There is no pending objection by this customer to this purpose to decide; nothing was recorded.' },
  CONSENT_LINK_INVALID: { status: 400, description: 'The unsubscribe or confirmation link was not made by Custos (forged or altered); nothing was recorded.' },
  CONSENT_LINK_EXPIRED: { status: 410, description: 'The unsubscribe or confirmation link has expired; nothing was recorded.' },
});
registerErrors(ConsentErrors);
