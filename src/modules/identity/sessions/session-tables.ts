/**
 * identity: sessions and MFA tickets. Neither table holds a token: only an HMAC-SHA256 of it under
 * the session key, so a stolen table gives no usable session (ASVS 7.2.x; OWASP Session Management
 * Cheat Sheet). Times are ISO-8601 text; nothing here is an email, an IP address or a user agent
 * string (a device is a coarse label such as "Firefox on Linux").
 */
export interface SessionTables {
  identity_sessions: {
    /** `ses_…`: the public id a person sees in the device list and revokes by. */
    id: string;
    /** HMAC-SHA256 (session key) of the current token; replaced at every rotation. */
    token_hash: string;
    account_id: string;
    realm: 'customer' | 'staff';
    created_at: string;
    /** Last time a password or passkey was checked in this session (step-up, ASVS 7.5.1). */
    authenticated_at: string;
    /** Last time a second factor was verified in this session; null: none yet. */
    mfa_verified_at: string | null;
    /** Last request seen (kept to the minute): the idle limit counts from here. */
    last_seen_at: string;
    /** Absolute limit from sign-in; rotation never moves it (NIST SP 800-63B rev 4 §2.2.3). */
    expires_at: string;
    /** Coarse label of the device, from the User-Agent's browser and OS families. */
    device: string;
    rotated_at: string | null;
    revoked_at: string | null;
    revoked_reason: string | null;
    /** Uses after the session ended that no audit entry has summarised yet. */
    dead_uses: number;
    /** When the last audit entry about uses after the end was written; null: none yet. */
    dead_use_logged_at: string | null;
  };
  /** The step between a verified password and a verified second factor: short-lived, few tries. */
  identity_mfa_tickets: {
    /** HMAC-SHA256 (session key) of the ticket. */
    ticket_hash: string;
    account_id: string;
    realm: 'customer' | 'staff';
    /** When the password was verified (becomes the session's authenticated_at). */
    created_at: string;
    expires_at: string;
    /** Failed second-factor attempts on this ticket. */
    failures: number;
  };
}
