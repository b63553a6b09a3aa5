import type { AuditKeys } from '../../crypto/keyring.ts';
import { createHash, createHmac, sign, timingSafeEqual, verify, type KeyObject } from 'node:crypto';

/** prev_hash of the first entry (and the head of an empty log). */
export const GENESIS_HASH = '0'.repeat(64);

const ENTRY_VERSION = 'custos.audit.entry/1';
/** An entry that names the record version a write produced: version 1's array, then that version. */
const ENTRY_VERSION_RECORD = 'custos.audit.entry/2';
const CHECKPOINT_VERSION = 'custos.audit.checkpoint/1';

/** The columns an entry is made of, as stored; `fields` is the JSON text of the field names. */
export interface EntryColumns {
  readonly nonce: string;
  readonly at: string;
  readonly actor: string;
  readonly action: string;
  readonly subject_id: string | null;
  readonly collection: string | null;
  readonly record_id: string | null;
  readonly fields: string;
  readonly purpose: string | null;
  readonly outcome: string;
  readonly request_id: string | null;
  /** Absent or NULL on every entry but a vault write's. */
  readonly record_version?: number | null;
}

/**
 * The canonical text of an entry: JSON of a fixed-order array of the stored columns. One
 * JSON.stringify, no key sorting, and the exact stored `fields` text (so a re-encoded but
 * "equivalent" value is still a change). PCI DSS 4.0.1 10.2.2 (what an audit record holds).
 */
export function entryText(e: EntryColumns): string {
  const recordVersion = e.record_version ?? null;
  const base: unknown[] = [
    recordVersion === null ? ENTRY_VERSION : ENTRY_VERSION_RECORD,
    e.nonce,
    e.at,
    e.actor,
    e.action,
    e.subject_id,
    e.collection,
    e.record_id,
    e.fields,
    e.purpose,
    e.outcome,
    e.request_id,
  ];
  // Entries without a record version keep version 1's exact text, so their MACs still verify.
  if (recordVersion !== null) base.push(Number(recordVersion));
  return JSON.stringify(base);
}

/** HMAC-SHA256 (hex) of the canonical entry: only a holder of the audit MAC key can make one. */
export function entryMac(key: KeyObject, text: string): string {
  return createHmac('sha256', key).update(text).digest('hex');
}

/** Constant-time MAC check (CONVENTIONS: secrets and authenticators compare in constant time). */
export function macMatches(key: KeyObject, text: string, mac: string): boolean {
  // Compared as text: the stored form must be exactly the one written (lower-case hex).
  const expected = Buffer.from(createHmac('sha256', key).update(text).digest('hex'));
  const given = Buffer.from(mac);
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/**
 * The MAC check of an entry under the current audit MAC key or an older version: an entry keeps
 * the MAC it was written with, and a rotation of the MAC key leaves old entries verifiable.
 */
export function macMatchesAny(keys: AuditKeys, text: string, mac: string): boolean {
  if (macMatches(keys.auditMac, text, mac)) return true;
  return (keys.auditMacPrevious ?? []).some((key) => macMatches(key, text, mac));
}

/** The public key of the signing-key version a checkpoint names, if it is one of this service's. */
export function checkpointKey(keys: AuditKeys, keyId: string): KeyObject | undefined {
  if (keys.auditSigning.keyId === keyId) return keys.auditSigning.publicKey;
  return keys.auditSigningPrevious?.find((k) => k.keyId === keyId)?.publicKey;
}

/**
 * hash = SHA-256(prev_hash ‖ canonical chained entry), where the chained entry is its position
 * (seq, row id), its MAC and its canonical text. Binding seq and id means that moving, swapping or
 * renumbering rows breaks the chain (PCI DSS 4.0.1 10.3.4: change detection on audit logs).
 */
export function chainHash(prevHash: string, seq: number, id: number, mac: string, text: string): string {
  return createHash('sha256').update(prevHash).update(`[${seq},${id},"${mac}"]`).update(text).digest('hex');
}

export interface CheckpointFields {
  readonly seq: number;
  readonly hash: string;
  readonly key_id: string;
  readonly at: string;
}

function checkpointPayload(c: CheckpointFields): Buffer {
  return Buffer.from(JSON.stringify([CHECKPOINT_VERSION, c.seq, c.hash, c.key_id, c.at]));
}

/** Ed25519 signature (base64url) over a checkpoint of the chain head. */
export function signCheckpoint(privateKey: KeyObject, c: CheckpointFields): string {
  return sign(null, checkpointPayload(c), privateKey).toString('base64url');
}

export function checkpointSignatureValid(publicKey: KeyObject, c: CheckpointFields, signature: string): boolean {
  const sig = Buffer.from(signature, 'base64url');
  if (sig.length !== 64) return false;
  return verify(null, checkpointPayload(c), publicKey, sig);
}
