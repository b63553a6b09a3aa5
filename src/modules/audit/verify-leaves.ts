import type { Kysely } from 'kysely';
import type { AuditKeys } from '../../crypto/keyring.ts';
import type { Database } from '../../store/schema.ts';
import { entryText, macMatchesAny } from './canonical.ts';
import { leafHash, HASH_SIZE } from './merkle.ts';
import { leafOfRow } from './tree-builder.ts';
import { leafRows } from './tree-store.ts';

/** Leaves checked per read. */
export const LEAF_PAGE = 1000;

export interface LeafFault {
  reason: string;
  leafIndex: number;
  entryId: number | null;
}

/**
 * Checks the entry leaves in [from, to) (from ≥ 1: leaf 0 is the chained log's, checked by the
 * caller): each leaf is present and in place, its entry is there, matches its MAC (current or
 * older MAC key) and is not marked refused, and the leaf hash stored equals the one recomputed from
 * the entry. Returns the recomputed leaf hashes, in order, as one buffer (32 bytes each), or the
 * first fault. The one check of a leaf, run in this thread or by the verifier's worker threads.
 */
export async function checkLeaves(db: Kysely<Database>, keys: AuditKeys, from: number, to: number): Promise<{ hashes: Buffer } | { fault: LeafFault }> {
  const hashes = Buffer.allocUnsafe((to - from) * HASH_SIZE);
  let next = from;
  while (next < to) {
    const rows = await leafRows(db, next, LEAF_PAGE, to);
    if (rows.length === 0) return { fault: { reason: `leaf ${next} is missing`, leafIndex: next, entryId: null } };
    for (const r of rows) {
      const index = Number(r.leaf_index);
      if (index !== next) return { fault: { reason: `leaf ${next} is missing`, leafIndex: next, entryId: null } };
      const entryId = r.entry_id === null ? null : Number(r.entry_id);
      const fault = (reason: string) => ({ fault: { reason, leafIndex: index, entryId } });
      if (r.id === null || r.at === null || r.mac === null || r.nonce === null || r.actor === null || r.action === null || r.fields === null || r.outcome === null) {
        return fault('the entry of this leaf is missing (deleted)');
      }
      const row = { ...r, id: Number(r.id), at: r.at, mac: r.mac, nonce: r.nonce, actor: r.actor, action: r.action, fields: r.fields, outcome: r.outcome };
      if (!macMatchesAny(keys, entryText(row), row.mac)) return fault('the entry does not match its MAC (edited or forged)');
      // The column hides an entry from its subject's access log: on a leaf it can only be an edit.
      if (r.rejected !== null) return fault('the entry of this leaf is marked as refused (edited)');
      const lh = leafHash(leafOfRow(row));
      if (lh.toString('hex') !== r.leaf_hash) return fault('the leaf does not match its entry');
      lh.copy(hashes, (index - from) * HASH_SIZE);
      next += 1;
    }
  }
  return { hashes };
}
