import { entryLeafText, LEGACY_VERSION, treeHeadText, type LeafColumns } from './leaf-text.ts';
import { createPublicKey, hash, sign, verify, type JsonWebKey, type KeyObject } from 'node:crypto';

/*
 * The signed tree head and the leaves of the audit log's Merkle tree, defined once
 * (docs/adr/0004-audit-merkle-log.md) for the builder, the CLI, the API and the verifiers.
 * Nothing here opens a database or reads configuration.
 */

/** The one JSON shape of a signed tree head. */
export interface SignedTreeHead {
  /** Leaves in the tree. */
  tree_size: number;
  /** RFC 9162 Merkle tree hash of those leaves, lower-case hex. */
  root_hash: string;
  /** When it was signed, ISO 8601 UTC. */
  timestamp: string;
  /** The audit-signing key version that signed it (the `kid` of GET /v1/keys/audit). */
  key_id: string;
  /** Ed25519 signature (base64url) over `treeHeadBytes`. */
  signature: string;
}


/** The exact bytes signed: UTF-8 JSON of ["custos.audit.tree-head/1", tree_size, root_hash, timestamp, key_id]. */
export function treeHeadBytes(h: Omit<SignedTreeHead, 'signature'>): Buffer {
  return Buffer.from(treeHeadText(h), 'utf8');
}

export function signTreeHead(privateKey: KeyObject, h: Omit<SignedTreeHead, 'signature'>): SignedTreeHead {
  return { ...h, signature: sign(null, treeHeadBytes(h), privateKey).toString('base64url') };
}

export function treeHeadSignatureValid(publicKey: KeyObject, h: SignedTreeHead): boolean {
  const sig = Buffer.from(h.signature, 'base64url');
  if (sig.length !== 64 || !/^[0-9a-f]{64}$/.test(h.root_hash) || !Number.isSafeInteger(h.tree_size) || h.tree_size < 0) return false;
  return verify(null, treeHeadBytes(h), publicKey, sig);
}

/** The signing public keys as a JWK set (RFC 7517; Ed25519 as RFC 8037), `kid` = heads' key_id. */
export interface AuditJwk {
  kty: 'OKP';
  crv: 'Ed25519';
  x: string;
  kid: string;
  alg: 'EdDSA';
  use: 'sig';
}

export function auditJwks(keys: readonly { keyId: string; publicKey: KeyObject }[]): { keys: AuditJwk[] } {
  return {
    keys: keys.map((k) => {
      const jwk = k.publicKey.export({ format: 'jwk' });
      return { kty: 'OKP', crv: 'Ed25519', x: String(jwk.x), kid: k.keyId, alg: 'EdDSA', use: 'sig' };
    }),
  };
}

/** Public keys by kid from a JWK set; entries that are not Ed25519 signing keys are ignored. */
export function keysFromJwks(set: unknown): Map<string, KeyObject> {
  const out = new Map<string, KeyObject>();
  const list = (set as { keys?: unknown } | null)?.keys;
  if (!Array.isArray(list)) return out;
  for (const k of list as Record<string, unknown>[]) {
    if (k.kty !== 'OKP' || k.crv !== 'Ed25519' || typeof k.x !== 'string' || typeof k.kid !== 'string') continue;
    out.set(k.kid, createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: k.x } as JsonWebKey, format: 'jwk' }));
  }
  return out;
}

/** The part of an entry its data subject is shown (the access log), in leaf order. */
export type VisibleEntry = LeafColumns;

/** The part withheld from the subject (nonce, request id, MAC), as one hash. */
export function withheldHash(e: { nonce: string; request_id: string | null; mac: string }): string {
  return hash('sha256', JSON.stringify([e.nonce, e.request_id, e.mac]), 'hex');
}

/**
 * A leaf: UTF-8 JSON of ["custos.audit.leaf/1", the visible columns…, withheld hash]. A subject
 * recomputes it from their access-log entry and the withheld hash the entry carries.
 */
export function entryLeaf(v: VisibleEntry, withheld: string): Buffer {
  return Buffer.from(entryLeafText(v, withheld), 'utf8');
}

/** Leaf 0: the head of the hash-chained log that came before the tree, and its last signed checkpoint. */
export interface LegacyHead {
  seq: number;
  hash: string;
  checkpoint: { signature: string; key_id: string; at: string } | null;
}

export function legacyLeaf(h: LegacyHead): Buffer {
  const c = h.checkpoint;
  return Buffer.from(JSON.stringify([LEGACY_VERSION, h.seq, h.hash, c?.signature ?? null, c?.key_id ?? null, c?.at ?? null]), 'utf8');
}
