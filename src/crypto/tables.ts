/** crypto: key-encryption keys (wrapped by the root key) and one data key per data subject. */
export interface KeyTables {
  keks: { version: number; wrapped: string; created_at: string };
  subject_keys: {
    subject_id: string;
    kek_version: number;
    dek_version: number;
    wrapped: string;
    created_at: string;
  };
}
