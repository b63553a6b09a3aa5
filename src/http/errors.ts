import { defineErrors, registerErrors } from '../kernel/errors.ts';

export const HttpErrors = defineErrors({
  REQUEST_MALFORMED_JSON: { status: 400, description: 'The body is not valid JSON.' },
  REQUEST_PROTOTYPE_KEY: {
    status: 400,
    description: 'The body uses `__proto__` (or `constructor` holding `prototype`) as a key, which is refused (prototype pollution); `fields` names where.',
  },
  REQUEST_TEXT_ILL_FORMED: {
    status: 400,
    description: 'A string or key in the body holds an unpaired UTF-16 surrogate (a lone `\\uD800`–`\\uDFFF` escape); `fields` names it.',
  },
  REQUEST_INVALID: { status: 400, description: 'A header, query parameter or body does not match the schema.' },
  REQUEST_TOO_LARGE: { status: 413, description: 'The body is larger than CUSTOS_BODY_LIMIT.' },
  REQUEST_UNSUPPORTED_MEDIA_TYPE: { status: 415, description: 'The body is not application/json (text/plain and form bodies included).' },
  IDEMPOTENCY_KEY_MALFORMED: {
    status: 400,
    description: 'The Idempotency-Key header is not a string of 1 to 255 visible ASCII characters (bare or as a quoted structured-field string).',
  },
  IDEMPOTENCY_KEY_IN_FLIGHT: {
    status: 409,
    description: 'A request with this Idempotency-Key is still being processed; retry once it has answered.',
  },
  IDEMPOTENCY_KEY_REUSED: {
    status: 422,
    description: 'This Idempotency-Key was used in the last 24 hours for a different request (method, path or body); nothing was done.',
  },
  ROUTE_NOT_FOUND: { status: 404, description: 'No such path or method.' },
  RATE_LIMITED: { status: 429, description: 'Too many requests for this API key (or address); retry after the Retry-After header.' },
  INTERNAL_ERROR: { status: 500, description: 'Something failed inside the service; the request id in the body finds it in the log.' },
});
registerErrors(HttpErrors);
