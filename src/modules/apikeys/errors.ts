import { defineErrors, registerErrors } from '../../kernel/errors.ts';

export const ApiKeyErrors = defineErrors({
  APIKEY_MISSING: { status: 401, description: 'No `Authorization: Bearer <api key>` header.' },
  APIKEY_INVALID: {
    status: 401,
    description: 'The API key is malformed, unknown or revoked (one answer for all three, so keys cannot be probed).',
  },
  APIKEY_SUSPENDED: {
    status: 403,
    description:
      'The API key is suspended (by a detection rule or `custos apikey suspend`); nothing was done. `custos apikey resume` lifts the suspension.',
  },
  APIKEY_NAME_INVALID: { status: 400, description: 'A key name must be 1–100 printable characters.' },
  APIKEY_NOT_FOUND: { status: 404, description: 'No API key with that id.' },
});
registerErrors(ApiKeyErrors);
