/** processors: the registry of recipients (processors and independent controllers); rows are ended, never deleted. */
export interface ProcessorTables {
  processors: {
    /** `prc_…` */
    id: string;
    name: string;
    role: 'processor' | 'controller';
    /** JSON arrays of inventory purposes and data categories. */
    purposes: string;
    categories: string;
    /** ISO 3166-1 alpha-2. */
    country: string;
    safeguard: 'adequacy' | 'scc' | 'bcr' | null;
    /** YYYY-MM-DD */
    dpa_signed: string | null;
    retention: string | null;
    added_at: string;
    /** When it stopped receiving data (GDPR Art. 15(1)(c), 19: past recipients stay listed). */
    removed_at: string | null;
    /** Where it is told of erasures (Standard Webhooks); null: staff confirm by hand. */
    webhook_url: string | null;
    /** Its `whsec_` signing secret, sealed under the `webhooks` service key (base64url). */
    webhook_secret: string | null;
  };
  /** What each recipient was told of a rights request, and whether it confirmed (migration 0023). */
  processor_notices: {
    /** `pnt_…` */
    id: string;
    request_id: string;
    processor_id: string;
    /** `erasure` */
    kind: string;
    customer_id: string;
    status: 'pending' | 'confirmed' | 'dead' | 'awaiting_confirmation';
    attempts: number;
    next_at: string | null;
    /** A WEBHOOK_* code, never a message from the endpoint. */
    last_error: string | null;
    created_at: string;
    confirmed_at: string | null;
    /** `webhook` or the staff actor who marked it. */
    confirmed_by: string | null;
  };
}
