/**
 * The card vault at a glance (CONVENTIONS.md, module layout).
 *
 * Owns: tables cards and card_reveals (migration 0015-cards), card_sessions and card_collect_page
 * (0020-card-sessions); the routes /v1/cards, /v1/cards/{token}, /v1/relay (routes.ts, relay.ts)
 * and /v1/cards/sessions (routes-sessions.ts, sessions.ts) in the API-key scope of src/app.ts,
 * /v1/staff/cards/{token}/reveal (routes-staff.ts) in the staff scope, and the card fields a
 * checkout embeds — /cards/collect with its script, stylesheet and scripts.json, and
 * POST /v1/cards/collect with a publishable key — in a scope of their own (routes-collect.ts,
 * collect-page.ts, web/cards/; change detection in collect-monitor.ts); the CVV store
 * (cvv-store.ts); `custos cards sweep|report` (src/cli/commands/cards.ts); error codes CARDS_* (errors.ts); the card
 * data rules (card-rules.ts: Luhn, IIN ranges, expiry, masking, token formats, keyed-hash index);
 * the service keys `card-vault` and `card-index` (keys.ts), rotated by `custos keys rotate --cards`;
 * the count of stored cards by brand for the incident register's PCI DSS 12.10.1 step (brands.ts).
 *
 * Personal data it holds: payment cards (PAN, expiry, cardholder name) of the inventory's `cards`
 * collection, sealed together with AES-256-GCM under the card-vault key, bound to token and key
 * version; brand, BIN and last four in clear (PCI DSS 3.4.1). The CVV is never written to disk.
 *
 * Depends on: inventory (the `cards` collection and `payments` purpose; the cardholder name's
 * free-text rules), policy (every operation's purpose), crypto (AEAD, service keys), audit (every
 * tokenise, read and delete, with the client address), store (Kysely), http/auth.ts (the actor),
 * http/csrf.ts (own origin of the card fields' calls), identity's failed-authentication budget
 * (publishable keys guessed), the api-key-hash service key (publishable keys stored hashed).
 */
export const CARD_AUDIT_ACTIONS = [
  'cards.tokenise',
  'cards.read',
  'cards.delete',
  'cards.relay',
  'cards.reveal',
  'cards.expire',
  'cards.retention_report',
  'cards.session_create',
  'cards.session_read',
  'cards.collect_page_changed',
  'cards.export',
] as const;
export type CardAuditAction = (typeof CARD_AUDIT_ACTIONS)[number];
