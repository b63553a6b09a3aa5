/**
 * The vault capability at a glance (CONVENTIONS.md, module layout).
 *
 * Owns: tables records and blind_indexes (migration 0001-vault-core; the per-customer data keys in
 * subject_keys belong to crypto/key-store.ts); the routes under /v1/customers and /v1/orders
 * (routes.ts), in the API-key scope of src/app.ts, where a staff session may stand in for a key;
 * error codes VAULT_* (errors.ts); the record codec (codec.ts).
 *
 * Personal data it holds: the customers, addresses and orders the inventory declares
 * (default-inventory.yaml: name, email, phone, date of birth, locale, addresses, purchase history).
 * Every field the inventory protects (`randomised` or `searchable`) is sealed on its own with
 * AES-256-GCM under the customer's data key, its associated data naming collection, field, record
 * and key version; fields the inventory declares `plain` (non-personal, such as an order's status
 * or currency) are kept in clear. `searchable` fields also get an HMAC-SHA256 blind index under
 * the blind-index key over the normalised value (email: NFC, lower-case; phone: E.164), so a
 * lookup opens nothing it does not return. Erasing a customer's data key makes all of it
 * unreadable. Responses carry only what the policy releases, masked as it decides.
 *
 * Depends on: inventory (collections, fields, masks, request and response shapes), policy (every
 * read and write decided through PolicyService), crypto (key store, AEAD, blind index), audit
 * (every touch appended, reads fail closed), store (Kysely, dialects), http/auth.ts (the actor).
 */

/**
 * Every audit action the vault writes (entries name actor, purpose, subject, record and field
 * names, never values). A refused attempt is the same action with outcome `denied`.
 */
export const VAULT_AUDIT_ACTIONS = [
  'vault.create',
  'vault.update',
  'vault.read',
  'vault.lookup',
  // A lookup candidate whose opened value does not match the blind index it was found by.
  'vault.integrity.blind_index_mismatch',
  // A read of the fields an erasure held for bookkeeping law (legal_obligation only; vault/erasure.ts).
  'vault.held.read',
  // A customer's access log read through the vault API.
  'audit.read',
  // A page of a customer's records read for their access or portability export (purpose rights).
  'vault.export',
] as const;
export type VaultAuditAction = (typeof VAULT_AUDIT_ACTIONS)[number];
