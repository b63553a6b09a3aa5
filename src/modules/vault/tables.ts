import type { Generated } from 'kysely';

/**
 * vault: every stored record. `data` is JSON: `{ s: envelope, p: plain fields }` (codec.ts), or,
 * for a record not yet re-sealed, `{ e: field → ciphertext, p }`. `version` is the record version.
 */
export interface VaultTables {
  records: {
    id: string;
    collection: string;
    subject_id: string;
    parent_id: string | null;
    data: string;
    created_at: string;
    updated_at: string;
    /** Incremented by every write; bound into the envelope (0: written before envelopes, never since). */
    version: Generated<number>;
  };
  /** `resealed` = 1 once every record is in the envelope format. */
  vault_state: { name: string; value: number };
  /** Blind indexes of searchable fields, each under the blind-index key version `key_version`. */
  blind_indexes: { collection: string; field: string; digest: string; record_id: string; key_version: number };
}
