/**
 * The card vault at a glance (CONVENTIONS.md, module layout).
 *
 * Owns: tables cards and card_reveals (migration 0015-cards); the routes /v1/cards,
 * /v1/cards/{token} and /v1/relay (routes.ts, relay.ts) in the API-key scope of src/app.ts, and
 * /v1/staff/cards/{token}/reveal (routes-staff.ts) in the staff scope; the CVV store
 * (cvv-store.ts); `custos cards sweep|report` (src/cli/commands/cards.ts); error codes CARDS_* (errors.ts); the card
 * data rules (card-rules.ts: Luhn, IIN ranges, expiry, masking, token formats, keyed-hash index);
 * the service keys `card-vault` and `card-index` (keys.ts), rotated by `custos keys rotate --cards`.
 *
 * Personal data it holds: payment cards (PAN, expiry, cardholder name) of the inventory's `cards`
 * collection, sealed together with AES-256-GCM under the card-vault key, bound to token and key
 * version; brand, BIN and last four in clear (PCI DSS 3.4.1). The CVV is never written to disk.
 *
 * Depends on: inventory (the `cards` collection and `payments` purpose; the cardholder name's
 * free-text rules), policy (every operation's purpose), crypto (AEAD, service keys), audit (every
 * tokenise, read and delete, with the client address), store (Kysely), http/auth.ts (the actor).
 */
export const CARD_AUDIT_ACTIONS = ['cards.tokenise', 'cards.read', 'cards.delete', 'cards.relay', 'cards.reveal', 'cards.expire', 'cards.retention_report', 'cards.export'] as const;
export type CardAuditAction = (typeof CARD_AUDIT_ACTIONS)[number];
