import { createHash, createPrivateKey, createPublicKey, hkdfSync, sign, verify, type KeyObject } from 'node:crypto';
import type { Kysely } from 'kysely';
import { fail } from '../../kernel/errors.ts';
import type { Database } from '../../store/schema.ts';
import { ConsentErrors } from './errors.ts';

/**
 * Consent receipts: compact JWS (RFC 7515) signed with EdDSA over Ed25519 (RFC 8037), which the
 * customer keeps and anyone checks against the JWK set at /v1/keys/receipts.
 *
 * The signing key is on the key store's lifecycle: each version of the `receipts` service key
 * (random, wrapped by the root key, added by `custos keys rotate --key receipts`, taken up by a
 * process at its next start) gives a consent receipts key of its own (HKDF-SHA256, label
 * `custos/consent/receipts`: not the erasure receipts key the same version signs with). The newest
 * signs; every older one stays in the JWK set, so receipts signed before a rotation still verify.
 * So do receipts of databases made before that: their keys were derived from the consent base key
 * (label `custos/consent/receipts/v<n>`) for the versions listed in `consent_receipt_keys`, which
 * are kept in the set, verify only.
 */
export interface Jwk {
  readonly kty: 'OKP';
  readonly crv: 'Ed25519';
  readonly x: string;
  readonly kid: string;
  readonly alg: 'EdDSA';
  readonly use: 'sig';
}

export interface ReceiptKeys {
  /** The key that signs new receipts. */
  current(): Promise<{ kid: string; privateKey: KeyObject }>;
  /** Every public key ever used, current first, the retired ones included. */
  publicKeys(): Promise<Jwk[]>;
}

const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

function ed25519(base: KeyObject, label: string, kidPrefix: string): { kid: string; privateKey: KeyObject; jwk: Jwk } {
  const seed = Buffer.from(hkdfSync('sha256', base.export(), Buffer.alloc(0), label, 32));
  const privateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const x = (createPublicKey(privateKey).export({ format: 'jwk' }) as { x: string }).x;
  const kid = `${kidPrefix}-${createHash('sha256').update(x).digest('base64url').slice(0, 8)}`;
  return { kid, privateKey, jwk: { kty: 'OKP', crv: 'Ed25519', x, kid, alg: 'EdDSA', use: 'sig' } };
}

/** A receipts key of a database made before the key store lifecycle: derived from the consent base key; verify only. */
export const legacyReceiptKey = (base: KeyObject, version: number) => ed25519(base, `custos/consent/receipts/v${version}`, `receipts-v${version}`);

/**
 * `versions`: every version of the `receipts` service key, newest first (ServiceKeySet.versions);
 * `legacyBase`: the consent base key, for the versions a database made before lists.
 */
export async function createReceiptKeys(deps: { db: Kysely<Database>; versions: readonly { version: number; key: KeyObject }[]; legacyBase: KeyObject }): Promise<ReceiptKeys> {
  const keys = deps.versions.map((v) => ed25519(v.key, 'custos/consent/receipts', `consent-v${v.version}`));
  const signing = keys[0];
  if (signing === undefined) throw new Error('no receipts service key');
  const legacy = await deps.db.selectFrom('consent_receipt_keys').select('version').orderBy('version', 'desc').execute();
  const jwks = [...keys, ...legacy.map((r) => legacyReceiptKey(deps.legacyBase, r.version))].map((k) => k.jwk);
  return {
    current: async () => ({ kid: signing.kid, privateKey: signing.privateKey }),
    publicKeys: async () => [...jwks],
  };
}

const b64 = (value: unknown) => Buffer.from(JSON.stringify(value)).toString('base64url');

/** A compact JWS of `payload` under the current receipts key. */
export async function signReceipt(keys: ReceiptKeys, payload: Record<string, unknown>): Promise<string> {
  const { kid, privateKey } = await keys.current();
  const input = `${b64({ alg: 'EdDSA', typ: 'JWT', kid })}.${b64(payload)}`;
  return `${input}.${sign(null, Buffer.from(input), privateKey).toString('base64url')}`;
}

/** The payload of a receipt whose EdDSA signature verifies under a known key; CONSENT_RECEIPT_INVALID otherwise. */
export async function verifyReceipt(keys: ReceiptKeys, receipt: string): Promise<{ kid: string; payload: Record<string, unknown> }> {
  const invalid = (): never => fail(ConsentErrors.CONSENT_RECEIPT_INVALID, 'the receipt does not verify');
  const parts = receipt.split('.');
  if (parts.length !== 3 || parts.some((p) => !/^[A-Za-z0-9_-]+$/.test(p))) invalid();
  const [h, p, s] = parts as [string, string, string];
  let header: { alg?: unknown; kid?: unknown };
  let payload: unknown;
  try {
    header = JSON.parse(Buffer.from(h, 'base64url').toString('utf8')) as { alg?: unknown; kid?: unknown };
    payload = JSON.parse(Buffer.from(p, 'base64url').toString('utf8'));
  } catch {
    return invalid();
  }
  if (header.alg !== 'EdDSA' || typeof header.kid !== 'string' || typeof payload !== 'object' || payload === null || Array.isArray(payload)) invalid();
  const jwk = (await keys.publicKeys()).find((k) => k.kid === header.kid);
  if (jwk === undefined) invalid();
  const key = createPublicKey({ key: { kty: jwk!.kty, crv: jwk!.crv, x: jwk!.x }, format: 'jwk' });
  const signature = Buffer.from(s, 'base64url');
  // Only the canonical encoding: spare low bits in the last character would let a changed receipt verify.
  if (signature.toString('base64url') !== s || !verify(null, Buffer.from(`${h}.${p}`), key, signature)) invalid();
  return { kid: header.kid as string, payload: payload as Record<string, unknown> };
}
