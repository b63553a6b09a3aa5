import { createHash, createPrivateKey, createPublicKey, hkdfSync, sign, verify, type KeyObject } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../kernel/clock.ts';
import { fail } from '../../kernel/errors.ts';
import type { Database } from '../../store/schema.ts';
import { ConsentErrors } from './errors.ts';

/**
 * Consent receipts: compact JWS (RFC 7515) signed with EdDSA over Ed25519 (RFC 8037), which the
 * customer keeps and anyone checks against the JWK set at /v1/keys/receipts.
 *
 * The signing key sits behind `ReceiptKeys` so that it can move onto the key store's lifecycle:
 * until then each version is derived from the consent module's base key (HKDF-SHA256, label
 * `receipts/v<n>`), the way the audit signing key is derived from the root, and only the version
 * numbers are stored. Retired versions stay in the JWK set, so older receipts still verify.
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
  /** Every public key ever used, the retired ones included. */
  publicKeys(): Promise<Jwk[]>;
  /** Adds a version and retires the one before; returns the new version. */
  rotate(): Promise<number>;
}

const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export function createDerivedReceiptKeys(deps: { db: Kysely<Database>; clock: Clock; base: KeyObject }): ReceiptKeys {
  const { db, clock, base } = deps;
  const material = new Map<number, { kid: string; privateKey: KeyObject; jwk: Jwk }>();
  const derive = (version: number) => {
    let m = material.get(version);
    if (m === undefined) {
      const seed = Buffer.from(hkdfSync('sha256', base.export(), Buffer.alloc(0), `custos/consent/receipts/v${version}`, 32));
      const privateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
      const publicKey = createPublicKey(privateKey);
      const x = (publicKey.export({ format: 'jwk' }) as { x: string }).x;
      const kid = `receipts-v${version}-${createHash('sha256').update(x).digest('base64url').slice(0, 8)}`;
      m = { kid, privateKey, jwk: { kty: 'OKP', crv: 'Ed25519', x, kid, alg: 'EdDSA', use: 'sig' } };
      material.set(version, m);
    }
    return m;
  };
  const versions = async () => (await db.selectFrom('consent_receipt_keys').select(['version', 'retired_at']).orderBy('version').execute()).map((r) => r.version);
  async function ensure(): Promise<number[]> {
    const have = await versions();
    if (have.length > 0) return have;
    await db
      .insertInto('consent_receipt_keys')
      .values({ version: 1, created_at: clock.now().toISOString(), retired_at: null })
      .onConflict((oc) => oc.column('version').doNothing())
      .execute();
    return versions();
  }
  return {
    async current() {
      const have = await ensure();
      const { kid, privateKey } = derive(have.at(-1)!);
      return { kid, privateKey };
    },
    async publicKeys() {
      return (await ensure()).map((v) => derive(v).jwk);
    },
    async rotate() {
      const have = await ensure();
      const next = have.at(-1)! + 1;
      const at = clock.now().toISOString();
      await db.transaction().execute(async (tx) => {
        await tx.updateTable('consent_receipt_keys').set({ retired_at: at }).where('retired_at', 'is', null).execute();
        await tx.insertInto('consent_receipt_keys').values({ version: next, created_at: at, retired_at: null }).execute();
      });
      return next;
    },
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
