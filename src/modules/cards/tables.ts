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
}
