import type { Kysely } from 'kysely';
import type { Database } from '../../store/schema.ts';
import type { LogLine } from './log-file.ts';
import { withheldHash, type SignedTreeHead } from './tree-head.ts';
import { allHeads, leafRows, legacyHead, legacySeq } from './tree-store.ts';

const PAGE = 1000;

/**
 * Writes the log up to its newest signed head as the JSON lines of log-file.ts: leaves in order,
 * each signed head after the leaf that completes it. Entries carry ids, actions, purposes and
 * field names (the audit log holds no personal values); nonce, request id and MAC only as one hash.
 */
export async function exportAuditLog(db: Kysely<Database>, write: (line: string) => void): Promise<SignedTreeHead | null> {
  const heads = await allHeads(db);
  const latest = heads.at(-1) ?? null;
  if (latest === null) return null;
  const headAt = new Map(heads.map((h) => [h.tree_size, h]));
  const emit = (l: LogLine) => write(JSON.stringify(l));
  let next = 0;
  while (next < latest.tree_size) {
    const rows = await leafRows(db, next, PAGE, latest.tree_size);
    if (rows.length === 0) throw new Error(`leaf ${next} is missing`);
    for (const r of rows) {
      const index = Number(r.leaf_index);
      if (index === 0) {
        const legacy = await legacyHead(db, await legacySeq(db));
        if (legacy === null) throw new Error('the checkpoint leaf 0 commits to is missing');
        emit({ type: 'legacy', leaf_index: 0, ...legacy });
      } else {
        if (r.id === null || r.at === null || r.actor === null || r.action === null || r.fields === null || r.outcome === null || r.nonce === null || r.mac === null) {
          throw new Error(`the entry of leaf ${index} is missing`);
        }
        emit({
          type: 'entry',
          leaf_index: index,
          id: Number(r.id),
          at: r.at,
          actor: r.actor,
          action: r.action,
          subject_id: r.subject_id,
          collection: r.collection,
          record_id: r.record_id,
          fields: r.fields,
          purpose: r.purpose,
          outcome: r.outcome,
          withheld_hash: withheldHash({ nonce: r.nonce, request_id: r.request_id, mac: r.mac }),
        });
      }
      const h = headAt.get(index + 1);
      if (h !== undefined) emit({ type: 'head', ...h });
      next = index + 1;
    }
  }
  return latest;
}
