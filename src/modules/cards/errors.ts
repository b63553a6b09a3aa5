import { defineErrors, registerErrors } from '../../kernel/errors.ts';

/** Card vault codes; no message ever carries a card number, CVV or cardholder name. */
export const CardErrors = defineErrors({
  CARDS_PAN_NOT_DIGITS: { status: 400, description: '`pan` holds something other than the digits 0–9 (send it without spaces or hyphens); nothing was stored.' },
  CARDS_PAN_LENGTH: { status: 400, description: '`pan` is shorter than 12 or longer than 19 digits; nothing was stored.' },
  CARDS_PAN_LUHN: { status: 400, description: '`pan` fails the Luhn check (a mistyped card number); nothing was stored.' },
  CARDS_PAN_BRAND_UNKNOWN: {
    status: 400,
    description: '`pan` lies in no known IIN range, or its length is not one its brand issues; nothing was stored.',
  },
  CARDS_EXPIRY_IMPOSSIBLE: { status: 400, description: '`exp_month` is not 1–12, or `exp_year` is not a four-digit year within 20 years; nothing was stored.' },
  CARDS_EXPIRED: { status: 400, description: 'The card expired before this month; nothing was stored.' },
  CARDS_CVV_INVALID: { status: 400, description: '`cvv` is not 3 digits (4 for American Express); nothing was stored.' },
  CARDS_PURPOSE_NOT_ALLOWED: {
    status: 403,
    description: 'The stated purpose (Custos-Purpose) may not use cards; card operations state `payments` with a key scoped to it.',
  },
  CARDS_REVEAL_API_KEY: { status: 403, description: 'No API key can reveal a card number; reveal is for staff holding `cards.reveal` only.' },
  CARDS_CVV_UNAVAILABLE: {
    status: 409,
    description: 'A relay placeholder asks for the CVV of a token that has none waiting: already used by a relay call, older than 10 minutes, or never given.',
  },
  CARDS_RELAY_TARGET_NOT_ALLOWED: {
    status: 403,
    description: 'The relay URL is not on CUSTOS_RELAY_ALLOWLIST, is not HTTPS outside loopback, or resolves to a private address the allow-list does not name.',
  },
  CARDS_RELAY_INVALID: {
    status: 400,
    description: 'The relay request is malformed: a header it may not set, a placeholder outside a JSON or form body, or a value that cannot be placed in a header.',
  },
  CARDS_RELAY_BODY_TOO_LARGE: { status: 413, description: 'The relay request body, after substitution, exceeds the relay limit (64 KiB).' },
  CARDS_RELAY_RESPONSE_TOO_LARGE: { status: 502, description: "The processor's response exceeds the relay limit (1 MiB); nothing of it was passed back." },
  CARDS_RELAY_UPSTREAM_FAILED: { status: 502, description: 'The processor could not be reached, failed TLS verification, or did not answer within the relay timeout (10 s).' },
  CARDS_TOKEN_UNKNOWN: { status: 404, description: 'No card has this token.' },
  CARDS_TOKEN_DELETED: { status: 410, description: 'The card of this token was deleted; its data is gone.' },
  CARDS_TOKEN_MALFORMED: { status: 400, description: 'The token in the path is neither a `tok_` token nor a format-preserving token (12–19 digits).' },
  CARDS_INTEGRITY_FAILURE: {
    status: 500,
    description: 'A stored card failed authentication (altered, or moved to another row), or its key version is missing; nothing was released.',
  },
  CARDS_NUMBER_IN_FREE_TEXT: {
    status: 400,
    description:
      'A free-text field holds what looks like a payment card number (known IIN range, that brand\'s length and the Luhn check); `fields` names it; nothing was stored. Tokenise cards through /v1/cards.',
  },
  CARDS_STOREFRONT_ORIGIN_NOT_ALLOWED: {
    status: 400,
    description: 'The card session names an `origin` that is not on CUSTOS_STOREFRONT_ORIGINS, names none while several are configured, or none is configured; no session was created.',
  },
  CARDS_SESSION_KEY_INVALID: {
    status: 401,
    description: 'POST /v1/cards/collect takes only a publishable key (`Authorization: Bearer cpk_…`) minted by POST /v1/cards/sessions; this one is missing, malformed or unknown.',
  },
  CARDS_SESSION_KEY_EXPIRED: { status: 401, description: 'The publishable key is older than its 15 minutes; the shop mints a new one for the checkout. Nothing was stored.' },
  CARDS_SESSION_KEY_USED: { status: 409, description: 'The publishable key was already spent on a card (single use); the shop mints a new one. Nothing was stored.' },
  CARDS_SESSION_ORIGIN_MISMATCH: { status: 403, description: 'The publishable key was minted for another storefront origin than the one this request comes from. Nothing was stored.' },
  CARDS_ORIGIN_NOT_ALLOWED: {
    status: 403,
    description: "The request's Origin is neither Custos's own nor one of CUSTOS_STOREFRONT_ORIGINS: cross-origin card collection is refused (no CORS headers are sent).",
  },
  CARDS_SESSION_UNKNOWN: { status: 404, description: 'No card session has this id.' },
  CARDS_COLLECT_PAGE_ALTERED: {
    status: 503,
    description: 'The card-collection page or one of its files differs from the release manifest (web/cards/collect.manifest.json) since this server started; it is withheld and the change is in the audit log (`cards.collect_page_changed`).',
  },
});
registerErrors(CardErrors);
