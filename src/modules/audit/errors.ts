import { defineErrors, registerErrors } from '../../kernel/errors.ts';

/** Error codes of the audit capability; listed in docs/errors.md. */
export const AuditErrors = defineErrors({
  AUDIT_UNAVAILABLE: {
    status: 503,
    description: 'The audit entry could not be written, so the request was not carried out (the audit log fails closed).',
  },
  AUDIT_ENTRY_INVALID: {
    status: 500,
    description: 'An audit entry was malformed (a field did not match its pattern); nothing was written.',
  },
  AUDIT_QUERY_INVALID: {
    status: 400,
    description: 'An audit query asked for an impossible page (limit outside 1..1000 or a bad cursor).',
  },
});

export const { AUDIT_UNAVAILABLE, AUDIT_ENTRY_INVALID, AUDIT_QUERY_INVALID } = AuditErrors;

registerErrors(AuditErrors);
