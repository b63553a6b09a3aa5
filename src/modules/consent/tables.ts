import type { Generated } from 'kysely';

/**
 * consent: the ledger (append-only; each row MACed and bound to its audit entry by id), the
 * notice versions, the version each purpose last changed in, and the receipts key versions of
 * databases made before the receipts key moved onto the key store (verify only).
 */
export interface ConsentTables {
  consent_ledger: {
    seq: Generated<number>;
    /** `cns_…`, also the record id of its audit entry. */
    id: string;
    subject_id: string;
    purpose: string;
    /**
     * granted, withdrawn, pending (double opt-in, waiting for the mailed link); for a
     * legitimate-interest purpose: objected (GDPR Art. 21, awaiting the privacy officer), then
     * objection_upheld or objection_rejected.
     */
    status: 'granted' | 'withdrawn' | 'pending' | 'objected' | 'objection_upheld' | 'objection_rejected';
    source: string;
    notice_version: number;
    /** JSON {text_sha256, channel, at} or NULL. */
    proof: string | null;
    actor: string;
    recorded_at: string;
    request_id: string | null;
    /** HMAC-SHA256 over the row (consent ledger key), base64url. */
    mac: string;
  };
  consent_notices: { version: number; digest: string; published_at: string };
  consent_purpose_versions: { purpose: string; digest: string; changed_in: number };
  /** Versions of the receipts keys a database made before the key store lifecycle derived from the consent base key: kept for verification only (receipts.ts). */
  consent_receipt_keys: { version: number; created_at: string; retired_at: string | null };
}
