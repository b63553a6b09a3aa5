/**
 * identity: customer and staff credentials, second factors, one-time links and attempt counters.
 * Times are ISO-8601 text like everywhere else, except in `identity_throttles`, whose times are
 * epoch milliseconds so that windows and blocks are plain integer arithmetic. No column holds an
 * email, a password, a secret or an IP address in the clear.
 */
export interface IdentityTables {
  identity_accounts: {
    /** `acc_…` */
    id: string;
    realm: 'customer' | 'staff';
    /** Blind index (HMAC-SHA256 under the blind-index key) of the normalised email: sign-in lookup. */
    email_index: string;
    /** During a blind-index rebuild: the same under the new key version (moved into `email_index` when it ends). */
    email_index_next: string | null;
    /** The normalised email, AES-256-GCM under the identity email key, bound to the account id. */
    email_sealed: string;
    /** The vault customer this sign-in belongs to, if any. */
    customer_id: string | null;
    /** argon2id PHC string; null for passkey-only accounts. */
    password_hash: string | null;
    password_changed_at: string | null;
    email_verified_at: string | null;
    /** WebAuthn user handle: 16 random bytes, base64url; never personal data. */
    user_handle: string;
    created_at: string;
    updated_at: string;
  };
  /** One authenticator app per account; `enabled_at` null while enrolment awaits its first code. */
  identity_totp: {
    account_id: string;
    secret_sealed: string;
    enabled_at: string | null;
    /** The last accepted RFC 6238 time step; a code of this step or an earlier one is refused. */
    last_step: number | null;
    created_at: string;
  };
  identity_recovery_codes: {
    account_id: string;
    /** HMAC-SHA256 of the normalised code, bound to the account id. */
    code_hash: string;
    used_at: string | null;
    created_at: string;
  };
  identity_passkeys: {
    /** base64url credential id */
    credential_id: string;
    account_id: string;
    /** COSE public key, base64url */
    public_key: string;
    counter: number;
    /** JSON array of transports */
    transports: string;
    device_type: string;
    backed_up: number;
    name: string | null;
    created_at: string;
    last_used_at: string | null;
  };
  /** Pending WebAuthn challenges: single use (deleted when answered), short-lived. */
  identity_webauthn_challenges: {
    challenge: string;
    purpose: 'registration' | 'authentication';
    account_id: string | null;
    expires_at: string;
    created_at: string;
  };
  /** Email verification and password reset links: `<id>.<secret>`, only a keyed hash of the secret stored. */
  identity_tokens: {
    id: string;
    account_id: string;
    purpose: 'verify_email' | 'reset_password';
    secret_hash: string;
    expires_at: string;
    used_at: string | null;
    created_at: string;
  };
  /**
   * Links a shop sends a stored customer to claim their account (`<clm id>.<secret>`): only a keyed
   * hash of the secret is stored, and the address the link was mailed to, sealed and bound to the link.
   */
  identity_claims: {
    id: string;
    customer_id: string;
    email_sealed: string;
    secret_hash: string;
    /** The actor that asked for the invitation (`apikey:…`, `staff:…`), as in the audit log. */
    created_by: string;
    expires_at: string;
    used_at: string | null;
    created_at: string;
  };
  /** Attempt counters of the database lockout backend; `key` is a keyed hash, never an email or IP. */
  identity_throttles: {
    key: string;
    count: number;
    window_start: number;
    blocked_until: number;
    strikes: number;
    version: number;
  };
}
