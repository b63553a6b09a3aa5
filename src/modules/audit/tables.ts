import type { Generated } from 'kysely';

/**
 * audit: the append-only log. An entry is inserted once, with its nonce and MAC, and never
 * updated; the tree builder admits it as a leaf of the Merkle tree (docs/adr/0004-audit-merkle-log.md).
 * seq, prev_hash, hash and rejected belong to the hash chain of versions before migration 0024
 * (docs/adr/0001-audit-log.md): set on the entries that chain covers, NULL on every later one.
 */
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
    /** JSON array of field names (never values). */
    fields: string;
    purpose: string | null;
    outcome: string;
    request_id: string | null;
    /** The record version a write produced (vault writes); NULL otherwise. */
    record_version: number | null;
    /** Unique per entry and covered by the MAC, so a replayed copy is refused or detected. */
    nonce: string;
    /** HMAC-SHA256 (hex) of the canonical entry under the audit MAC key. */
    mac: string;
    prev_hash: string | null;
    hash: string | null;
    /** Why the chainer of earlier versions refused this entry ('mac', 'duplicate'); NULL otherwise. */
    rejected: string | null;
  };
  /** The head of the chain (one row, id = 1). */
  audit_head: { id: number; seq: number; hash: string };
  /** Signed checkpoints of the head. */
  audit_checkpoints: { seq: number; hash: string; signature: string; key_id: string; at: string };
  /** The Merkle tree's leaves in admission order; entry_id NULL only for leaf 0 (the chained log before it). */
  audit_tree_leaves: { leaf_index: number; entry_id: number | null; leaf_hash: string };
  /** Hash (hex) of the perfect subtree of 2^level leaves starting at leaf idx·2^level. */
  audit_tree_nodes: { level: number; idx: number; hash: string };
  /** Signed tree heads (docs/adr/0004-audit-merkle-log.md). */
  audit_tree_heads: { tree_size: number; root_hash: string; timestamp: string; key_id: string; signature: string };
  /** Entries the tree builder refused ('mac', 'duplicate'): never leaves. */
  audit_tree_refused: { entry_id: number; reason: string };
  /** Entries the tree builder has not decided yet, filled by a trigger on audit_log (migration 0018). */
  audit_tree_pending: { entry_id: number };
  /** The tree builder's lease (one row, id = 1). */
  audit_tree_lease: { id: number; holder: string; expires_ms: number; legacy_seq: number | null };
}
