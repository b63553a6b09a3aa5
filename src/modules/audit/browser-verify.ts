/*
 * Checks, in a browser (Web Crypto only, no Node APIs), that an access-log entry a customer is
 * shown is a leaf of the signed audit log: the tree head's Ed25519 signature under the published
 * key (GET /v1/keys/audit), the leaf recomputed from the entry as shown plus the hash of what is
 * withheld, and the RFC 9162 §2.1.3.2 inclusion proof up to the signed root.
 */
import { entryLeafText, treeHeadText, type LeafColumns } from './leaf-text.ts';
import { pathStep } from './merkle-path.ts';

/** An access-log entry as its customer is shown it (field names as a list), with the withheld part's hash. */
export type ShownEntry = Omit<LeafColumns, 'fields'> & { fields: string[]; withheld_hash: string };

export interface EntryProof {
  entry: ShownEntry;
  proof: { leaf_index: number; tree_size: number; inclusion_path: string[] };
  head: { tree_size: number; root_hash: string; timestamp: string; key_id: string; signature: string };
  keys: { keys: { kid: string; kty: string; crv: string; x: string }[] };
}

const utf8 = (s: string) => new TextEncoder().encode(s);

function fromHex(hex: string): Uint8Array {
  if (!/^(?:[0-9a-f]{2})*$/.test(hex)) throw new Error('not hex');
  return Uint8Array.from(hex.match(/../g) ?? [], (b) => parseInt(b, 16));
}

function fromBase64url(s: string): Uint8Array {
  const b64 = s.replace(/-/g, '+').replace(/_/g, '/') + '='.repeat((4 - (s.length % 4)) % 4);
  return Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
}

function toHex(b: Uint8Array): string {
  return Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
}

export async function verifyEntryProof(p: EntryProof, subtle: typeof globalThis.crypto.subtle = globalThis.crypto.subtle): Promise<boolean> {
  const sha = async (...parts: Uint8Array[]) => {
    const all = new Uint8Array(parts.reduce((n, x) => n + x.length, 0));
    let o = 0;
    for (const x of parts) {
      all.set(x, o);
      o += x.length;
    }
    return new Uint8Array(await subtle.digest('SHA-256', all));
  };
  const { entry, proof, head } = p;
  if (proof.tree_size !== head.tree_size || proof.leaf_index < 0 || proof.leaf_index >= proof.tree_size) return false;
  const jwk = p.keys.keys.find((k) => k.kid === head.key_id && k.kty === 'OKP' && k.crv === 'Ed25519');
  if (jwk === undefined) return false;
  const key = await subtle.importKey('jwk', { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, { name: 'Ed25519' }, false, ['verify']);
  const signed = await subtle.verify({ name: 'Ed25519' }, key, fromBase64url(head.signature), utf8(treeHeadText(head)));
  if (!signed) return false;
  const leafText = entryLeafText({ ...entry, fields: JSON.stringify(entry.fields) }, entry.withheld_hash);
  let r = await sha(Uint8Array.of(0), utf8(leafText));
  let fn = proof.leaf_index;
  let sn = proof.tree_size - 1;
  for (const hex of proof.inclusion_path) {
    if (sn === 0) return false;
    const step = pathStep(fn, sn);
    const sibling = fromHex(hex);
    r = step.left ? await sha(Uint8Array.of(1), sibling, r) : await sha(Uint8Array.of(1), r, sibling);
    ({ fn, sn } = step);
  }
  return sn === 0 && toHex(r) === head.root_hash;
}
