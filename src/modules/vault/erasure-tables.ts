/** vault: fields held for a legal obligation after their customer was erased (migration 0014-rights). */
export interface VaultErasureTables {
  held_records: {
    record_id: string;
    subject_id: string;
    collection: string;
    /** The key-store subject of the hold key the values are sealed under. */
    hold_subject: string;
    /** The held fields as one record envelope under the hold key (codec.ts `sealRecord`, no plain fields). */
    data: string;
    held_until: string;
    ground: string;
    created_at: string;
  };
}
