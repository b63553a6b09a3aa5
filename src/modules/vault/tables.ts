/** vault: every stored record; `data` is a JSON object of field → ciphertext (or plain value). */
export interface VaultTables {
  records: {
    id: string;
    collection: string;
    subject_id: string;
    parent_id: string | null;
    data: string;
    created_at: string;
    updated_at: string;
  };
  /** Blind indexes of searchable fields. */
  blind_indexes: { collection: string; field: string; digest: string; record_id: string };
}
