import { defineErrors, registerErrors } from '../../kernel/errors.ts';

export const VaultErrors = defineErrors({
  VAULT_NOT_FOUND: { status: 404, description: 'No record with that id (or not visible to this caller).' },
  VAULT_ID_MALFORMED: { status: 400, description: 'The id in the path is not a well-formed id of that kind.' },
  VAULT_FIELD_UNDECLARED: {
    status: 400,
    description: 'The body carries a field the data inventory does not declare (data minimisation); nothing was stored.',
  },
  VAULT_FIELD_INVALID: { status: 400, description: 'A field has the wrong type or format; nothing was stored.' },
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
});
registerErrors(VaultErrors);
