import { sign, verify, type KeyObject } from 'node:crypto';
import type { AuditSigner } from '../../crypto/keyring.ts';

/**
 * Erasure receipts: JWS compact serialisation (RFC 7515) signed with Ed25519 (`alg: EdDSA`,
 * RFC 8037) under the `receipts` service key, its key id in the header. Anyone holding the public
 * key (`GET /v1/rights/receipt-keys`, a JWK set) can check what a receipt says was erased and held.
 */
export const RECEIPT_TYPE = 'custos-erasure-receipt+jwt';

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value), 'utf8').toString('base64url');

export function signReceipt(signer: AuditSigner, claims: Record<string, unknown>): string {
  const input = `${b64({ alg: 'EdDSA', typ: RECEIPT_TYPE, kid: signer.keyId })}.${b64(claims)}`;
  return `${input}.${sign(null, Buffer.from(input, 'ascii'), signer.privateKey).toString('base64url')}`;
}

type Verifier = Pick<AuditSigner, 'publicKey' | 'keyId'>;

/** The claims of a receipt whose signature checks under one of `keys` (by `kid`), else undefined. */
export function verifyReceipt(jws: string, keys: readonly Verifier[]): Record<string, unknown> | undefined {
  const [h, p, s] = jws.split('.');
  if (h === undefined || p === undefined || s === undefined) return undefined;
  try {
    const header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as { alg?: unknown; kid?: unknown };
    const key = keys.find((k) => k.keyId === header.kid);
    if (header.alg !== 'EdDSA' || key === undefined) return undefined;
    if (!verify(null, Buffer.from(`${h}.${p}`, 'ascii'), key.publicKey, Buffer.from(s, 'base64url'))) return undefined;
    return JSON.parse(Buffer.from(p, 'base64url').toString('utf8')) as Record<string, unknown>;
  } catch {
    return undefined;
  }
}

export interface ReceiptJwk {
  kty: string;
  crv: string;
  x: string;
  kid: string;
  alg: string;
  use: string;
}

/** The public receipt keys as a JWK set (RFC 7517), current first. */
export function receiptJwks(keys: readonly Verifier[]): { keys: ReceiptJwk[] } {
  return {
    keys: keys.map((k) => {
      const jwk = (k.publicKey as KeyObject).export({ format: 'jwk' }) as { kty: string; crv: string; x: string };
      return { kty: jwk.kty, crv: jwk.crv, x: jwk.x, kid: k.keyId, alg: 'EdDSA', use: 'sig' };
    }),
  };
}
