/** vault: fields held for a legal obligation after their customer was erased (migration 0014-rights). */
export interface VaultErasureTables {
  held_records: {
    record_id: string;
    subject_id: string;
    collection: string;
    /** The key-store subject of the hold key the values are sealed under. */
    hold_subject: string;
    /** JSON object of field → ciphertext under the hold key. */
    data: string;
    held_until: string;
    ground: string;
    created_at: string;
  };
}
