import { Frontier, leafHash } from './merkle.ts';
import { entryLeaf, keysFromJwks, legacyLeaf, treeHeadSignatureValid, type LegacyHead, type SignedTreeHead, type VisibleEntry } from './tree-head.ts';

/*
 * The exported audit log (`custos audit export`): JSON lines, in leaf order, each one of
 *   {"type":"legacy","leaf_index":0,…LegacyHead}          leaf 0, the chained log before the tree
 *   {"type":"entry","leaf_index":N,…VisibleEntry,"withheld_hash":"…"}
 *   {"type":"head",…SignedTreeHead}                       after the leaf that completes its size
 * Entries carry ids, actions, purposes and field names, never personal values. Checking a file
 * needs only the JWK set of GET /v1/keys/audit: no database, configuration or root key.
 */
export type LogLine =
  | ({ type: 'legacy'; leaf_index: 0 } & LegacyHead)
  | ({ type: 'entry'; leaf_index: number; withheld_hash: string } & VisibleEntry)
  | ({ type: 'head' } & SignedTreeHead);

export type LogFileResult =
  | { ok: true; treeSize: number; head: SignedTreeHead | null; heads: number }
  | { ok: false; line: number; reason: string };

/** Checks an exported log: leaf order, every signed head's root and signature under the given keys. */
export function verifyLogFile(text: string, jwks: unknown): LogFileResult {
  const keys = keysFromJwks(jwks);
  const frontier = new Frontier(0, []);
  let head: SignedTreeHead | null = null;
  let heads = 0;
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const raw = lines[i];
    if (raw === undefined || raw.trim() === '') continue;
    const bad = (reason: string): LogFileResult => ({ ok: false, line: i + 1, reason });
    let line: LogLine;
    try {
      line = JSON.parse(raw) as LogLine;
    } catch {
      return bad('not JSON');
    }
    if (line.type === 'head') {
      const h: SignedTreeHead = { tree_size: line.tree_size, root_hash: line.root_hash, timestamp: line.timestamp, key_id: line.key_id, signature: line.signature };
      const key = keys.get(h.key_id);
      if (key === undefined) return bad(`no public key ${h.key_id}`);
      if (!treeHeadSignatureValid(key, h)) return bad('the tree head signature does not verify');
      if (h.tree_size !== frontier.size) return bad(`a head of size ${h.tree_size} after ${frontier.size} leaves`);
      if (frontier.root().toString('hex') !== h.root_hash) return bad(`the leaves do not hash to the signed head of size ${h.tree_size}`);
      head = h;
      heads += 1;
      continue;
    }
    if (line.leaf_index !== frontier.size) return bad(`leaf ${frontier.size} expected, ${String(line.leaf_index)} found`);
    if (line.type === 'legacy') {
      if (line.leaf_index !== 0) return bad('the chained log may only be leaf 0');
      frontier.append(leafHash(legacyLeaf(line)));
    } else if (line.type === 'entry') {
      frontier.append(leafHash(entryLeaf(line, line.withheld_hash)));
    } else return bad('unknown line type');
  }
  if (head === null && frontier.size > 0) return { ok: false, line: lines.length, reason: 'no signed tree head' };
  if (head !== null && head.tree_size !== frontier.size) return { ok: false, line: lines.length, reason: 'leaves after the last signed head' };
  return { ok: true, treeSize: frontier.size, head, heads };
}
