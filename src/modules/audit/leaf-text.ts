import type { AuditTables } from './tables.ts';

/*
 * The exact texts that are hashed or signed (docs/adr/0004-audit-merkle-log.md), with no runtime imports,
 * so that tree-head.ts (Node) and browser-verify.ts (browsers) build the same bytes (UTF-8).
 */
export const TREE_HEAD_VERSION = 'custos.audit.tree-head/1';
export const LEAF_VERSION = 'custos.audit.leaf/1';
export const LEGACY_VERSION = 'custos.audit.legacy/1';

export function treeHeadText(h: { tree_size: number; root_hash: string; timestamp: string; key_id: string }): string {
  return JSON.stringify([TREE_HEAD_VERSION, h.tree_size, h.root_hash, h.timestamp, h.key_id]);
}

/** The columns of an entry a leaf shows, `fields` as the stored JSON text of the field names. */
export type LeafColumns = { id: number } & Pick<
  AuditTables['audit_log'],
  'at' | 'actor' | 'action' | 'subject_id' | 'collection' | 'record_id' | 'fields' | 'purpose' | 'outcome'
>;

export function entryLeafText(v: LeafColumns, withheld: string): string {
  return JSON.stringify([LEAF_VERSION, v.id, v.at, v.actor, v.action, v.subject_id, v.collection, v.record_id, v.fields, v.purpose, v.outcome, withheld]);
}
