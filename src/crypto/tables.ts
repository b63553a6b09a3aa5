/** crypto: the service's keys, KEKs and data keys, each versioned and wrapped (src/crypto/key-store.ts). */
export interface KeyTables {
  /** Key-encryption keys, wrapped by the root key named by `root_kid` (null until the first start after migration 0009). */
  keks: { version: number; wrapped: string; created_at: string; root_kid: string | null };
  /** One row per (subject, data-key version), wrapped by a KEK. */
  subject_keys: {
    subject_id: string;
    dek_version: number;
    kek_version: number;
    wrapped: string;
    created_at: string;
  };
  /** The service's own keys (blind index, API-key hash, audit MAC and signing, module base keys), wrapped by the root key. */
  service_keys: { name: string; version: number; root_kid: string; wrapped: string; created_at: string };
  /** `generation`: bumped by every key change that must empty the caches; `root-derived`: see migration 0009. */
  key_state: { name: string; value: number };
}
