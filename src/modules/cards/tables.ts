/** cards: one row per token (migration 0015-cards). */
export interface CardTables {
  cards: {
    token: string;
    customer_id: string | null;
    brand: string | null;
    bin: string | null;
    last4: string | null;
    /** The first instant after the expiry month (ISO 8601, UTC). */
    expires_at: string | null;
    key_version: number | null;
    /** base64url of the AES-256-GCM box of { pan, exp_month, exp_year, cardholder_name }. */
    sealed: string | null;
    fingerprint: string | null;
    fingerprint_version: number | null;
    created_at: string;
    deleted_at: string | null;
    removed_by: 'delete' | 'expiry' | null;
  };
  /** Staff reveals of a PAN: who, when, and the stated reason sealed under card-vault key `key_version`. */
  card_reveals: { id: string; token: string; member_id: string; key_version: number; reason: string; at: string };
  /** Publishable keys for the card-collection page (migration 0020-card-sessions); the key itself is never stored. */
  card_sessions: {
    id: string;
    /** base64url HMAC-SHA256 of the key's secret under the api-key-hash key. */
    secret_hash: string;
    created_by: string;
    origin: string;
    customer_id: string | null;
    token_format: 'opaque' | 'format_preserving';
    created_at: string;
    expires_at: string;
    used_at: string | null;
    card_token: string | null;
  };
  /** SHA-256 (base64) of each part of /cards/collect as last served: `collect.html`, `collect.js`, `collect.css`, `headers`. */
  card_collect_page: { part: string; sha256: string; recorded_at: string };
}
