import { defineErrors, registerErrors } from '../../kernel/errors.ts';

export const VaultErrors = defineErrors({
  VAULT_NOT_FOUND: { status: 404, description: 'No record with that id (or not visible to this caller).' },
  VAULT_ID_MALFORMED: { status: 400, description: 'The id in the path is not a well-formed id of that kind.' },
  VAULT_FIELD_UNDECLARED: {
    status: 400,
    description: 'The body carries a field the data inventory does not declare (data minimisation); nothing was stored.',
  },
  VAULT_FIELD_INVALID: { status: 400, description: 'A field has the wrong type or format; nothing was stored.' },
  VAULT_TEXT_CONTROL_CHARACTER: {
    status: 400,
    description: 'A free-text field holds a control character other than tab and newline; `fields` names it; nothing was stored.',
  },
  VAULT_CONTACT_INVISIBLE_CHARACTER: {
    status: 400,
    description:
      'An email or phone holds an invisible or format character (zero-width space or joiner, bidi control, control character); `fields` names it; nothing was stored.',
  },
  VAULT_DATE_OF_BIRTH_OUT_OF_RANGE: {
    status: 400,
    description: '`date_of_birth` lies in the future or more than 130 years back; nothing was stored.',
  },
  VAULT_DECIMAL_AS_NUMBER: {
    status: 400,
    description: 'A decimal amount (money) came as a JSON number; send it as a string such as "49.90" (a number loses digits); `fields` names it; nothing was stored.',
  },
  VAULT_LOOKUP_INVALID: { status: 400, description: 'A lookup needs exactly one of `email` or `phone`, well-formed.' },
  VAULT_LOOKUP_NOT_ALLOWED: {
    status: 403,
    description: 'The stated purpose may not see the field looked up by, so it may not learn whether a customer has that value.',
  },
  VAULT_INTEGRITY_FAILURE: {
    status: 500,
    description:
      'A stored record failed authentication (altered, a field added, removed or swapped, or moved to another row, collection or customer); nothing was released.',
  },
  VAULT_WRITE_UNAVAILABLE: {
    status: 503,
    description:
      'The write could not be stored together with its audit entry (the database or the audit log refused it); nothing was stored. Retry later.',
  },
  VAULT_EMAIL_TAKEN: {
    status: 409,
    description:
      'Another customer record already holds this email (one person, one record); nothing was stored. `existing_id` names it only when the caller may look customers up by email.',
  },
  VAULT_ORDER_NUMBER_TAKEN: { status: 409, description: 'This customer already has an order with this `number`; nothing was stored.' },
});
registerErrors(VaultErrors);
