import type { Generated } from 'kysely';

/** audit: the append-only log; seq/prev_hash/hash are set when an entry is chained. */
export interface AuditTables {
  audit_log: {
    id: Generated<number>;
    seq: number | null;
    at: string;
    actor: string;
    action: string;
    subject_id: string | null;
    collection: string | null;
    record_id: string | null;
    fields: string;
    purpose: string | null;
    outcome: string;
    request_id: string | null;
    mac: string;
    prev_hash: string | null;
    hash: string | null;
  };
  /** The head of the chain (one row, id = 1). */
  audit_head: { id: number; seq: number; hash: string };
  /** Signed checkpoints of the head. */
  audit_checkpoints: { seq: number; hash: string; signature: string; key_id: string; at: string };
}
