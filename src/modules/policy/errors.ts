import { defineErrors, registerErrors } from '../../kernel/errors.ts';

export const PolicyErrors = defineErrors({
  POLICY_PURPOSE_REQUIRED: {
    status: 400,
    description: 'A read, and a write by staff or a customer, must state its purpose in the `Custos-Purpose` header.',
  },
  POLICY_PURPOSE_UNKNOWN: { status: 400, description: 'The stated purpose is not declared in the data inventory.' },
  POLICY_PURPOSE_NOT_ALLOWED: { status: 403, description: 'The caller is not scoped to the stated purpose.' },
  POLICY_WRITE_NOT_ALLOWED: {
    status: 403,
    description:
      'The write sets or clears fields (listed in `fields`) that no purpose it writes through (`purposes`: the stated one, or else all of the API key\'s) may write; nothing was stored.',
  },
  POLICY_SUBJECT_RESTRICTED: {
    status: 403,
    description:
      "The customer restricted the processing of their data (GDPR Art. 18): it is stored, and released only for legal_obligation, for the rights process, to the customer, and for purposes the customer consented to; nothing was released.",
  },
  POLICY_SUBJECT_ERASED: {
    status: 404,
    description:
      "The customer's erasure (GDPR Art. 17) was accepted and is completing: nothing of theirs is released, for any purpose, to anyone; once it completes their records are gone (VAULT_NOT_FOUND). Held fields open only through the held records (legal_obligation).",
  },
});
registerErrors(PolicyErrors);
