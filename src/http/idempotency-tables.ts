/**
 * Idempotency keys (src/http/idempotency.ts). Keyed by the caller and a keyed hash of the key the
 * client sent; the request is kept only as a keyed hash, and the answer only when it holds ids.
 */
export interface IdempotencyTables {
  idempotency_keys: {
    caller_ref: string;
    key_hash: string;
    request_hash: string;
    /** null while the first request is in flight. */
    status: number | null;
    response: string | null;
    created_at: string;
    expires_at: string;
  };
}
