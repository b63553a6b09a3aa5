import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Clock } from '../kernel/clock.ts';
import type { Database } from '../store/schema.ts';
import type { KeyVersions } from './key-versions.ts';
import { auditSignerFromSeed, LEGACY_LABELS, type AuditSigner, rootByKid, type RootKeys, type RootRing } from './keyring.ts';

/**
 * The service's own keys, each a random 32-byte key of its own, versioned, stored wrapped by the
 * root key (`service_keys`), so that a root rotation re-wraps them instead of changing them. On a
 * database made before they were stored (`key_state` 'root-derived'), version 1 of each is the
 * value once derived from the root with HKDF-SHA256, so nothing written before breaks.
 */
export const SERVICE_KEY_NAMES = Object.keys(LEGACY_LABELS) as ServiceKeyName[];
export type ServiceKeyName = keyof typeof LEGACY_LABELS;

/** Keys whose users handle older versions today; the others wait for their data to be re-keyed. */
export const ROTATABLE_SERVICE_KEYS: readonly ServiceKeyName[] = ['audit-mac', 'audit-signing', 'api-key-hash', 'receipts', 'identity', 'staff'];

const aad = (name: string, version: number) => `custos:service-key|${name}|${version}`;

export class ServiceKeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ServiceKeyError';
  }
}

/** Every version of every service key, and the key set the services use (current versions). */
export interface ServiceKeySet extends RootKeys {
  /** Base key of identity (only ever used as HKDF input, src/modules/identity/keys.ts). */
  readonly identityBase: KeyObject;
  /** Base key of staff (only ever used as HKDF input, src/modules/staff/keys.ts). */
  readonly staffBase: KeyObject;
  /** Keyed hashes of Idempotency-Key values and requests (src/http/idempotency.ts). */
  readonly idempotency: KeyObject;
  /** Base key of consent (only ever used as HKDF input: ledger MACs, links, receipt signing keys). */
  readonly consentBase: KeyObject;
  /** Seals secrets Custos keeps to sign its own outgoing webhooks (recipients' `whsec_` secrets). */
  readonly webhooks: KeyObject;
  /** Ed25519 signer of erasure receipts (JWS EdDSA, src/modules/rights/receipt.ts); older versions verify only. */
  readonly receiptSigning: AuditSigner;
  readonly receiptSigningPrevious: readonly Pick<AuditSigner, 'publicKey' | 'keyId'>[];
  /** Raw material of every version, by name, newest first (the blind index rebuild needs the old one). */
  readonly versions: ReadonlyMap<ServiceKeyName, readonly { version: number; key: KeyObject }[]>;
}

type Row = Database['service_keys'];

/** The raw material of one stored service-key version (throws ServiceKeyError when the root does not open it). */
export function unwrapRow(ring: RootRing, row: Row): Buffer {
  const root = rootByKid(ring, row.root_kid, `service key ${row.name} v${row.version}`);
  const raw = root.unwrap(row.wrapped, aad(row.name, row.version));
  if (raw === undefined) throw new ServiceKeyError(`service key ${row.name} v${row.version} failed to unwrap: wrong root key (${ring.variable}) or altered key material`);
  return raw;
}

/** Stores a version of a service key, wrapped by the current root (nothing when it exists). */
export async function insertVersion(db: Kysely<Database>, ring: RootRing, name: ServiceKeyName, version: number, raw: Buffer, at: string): Promise<void> {
  const root = ring.current();
  await db
    .insertInto('service_keys')
    .values({ name, version, root_kid: root.kid, wrapped: root.wrap(raw, aad(name, version)), created_at: at })
    .onConflict((oc) => oc.columns(['name', 'version']).doNothing())
    .execute();
}

/**
 * Makes sure a version of every service key exists (version 1 when none does) (safe from several processes: the first insert
 * wins, everyone reads back the stored row), then unwraps every version.
 */
export async function loadServiceKeys(db: Kysely<Database>, ring: RootRing, clock: Clock): Promise<ServiceKeySet> {
  // Any version: the blind-index key's first version is destroyed by its first rotation.
  const existing = await db.selectFrom('service_keys').select('name').distinct().execute();
  const have = new Set(existing.map((r) => r.name));
  if (have.size < SERVICE_KEY_NAMES.length) {
    const marker = await db.selectFrom('key_state').select('value').where('name', '=', 'root-derived').executeTakeFirst();
    const root = ring.current();
    for (const name of SERVICE_KEY_NAMES) {
      if (have.has(name)) continue;
      let raw: Buffer;
      if (marker?.value === 1) {
        if (root.derive === undefined) throw new ServiceKeyError(`this database's keys were derived from a software root key; start once with it (${ring.variable}) before moving the root into an HSM`);
        raw = root.derive(LEGACY_LABELS[name]);
      } else raw = randomBytes(32);
      await insertVersion(db, ring, name, 1, raw, clock.now().toISOString());
    }
  }
  const rows = await db.selectFrom('service_keys').selectAll().orderBy('name').orderBy('version', 'desc').execute();
  const versions = new Map<ServiceKeyName, { version: number; key: KeyObject; raw: Buffer }[]>();
  for (const row of rows) {
    const list = versions.get(row.name as ServiceKeyName) ?? [];
    const raw = unwrapRow(ring, row);
    list.push({ version: row.version, key: createSecretKey(raw), raw });
    versions.set(row.name as ServiceKeyName, list);
  }
  const all = (name: ServiceKeyName) => {
    const list = versions.get(name);
    if (list === undefined || list.length === 0) throw new ServiceKeyError(`service key ${name} is missing`);
    return list;
  };
  const current = (name: ServiceKeyName) => all(name)[0]!.key;
  const signers = all('audit-signing').map((v) => auditSignerFromSeed(v.raw));
  const receiptSigners = all('receipts').map((v) => auditSignerFromSeed(v.raw));
  return {
    blindIndex: current('blind-index'),
    apiKeyHash: current('api-key-hash'),
    auditMac: current('audit-mac'),
    auditMacPrevious: all('audit-mac').slice(1).map((v) => v.key),
    auditMacVersion: all('audit-mac')[0]!.version,
    auditSigning: signers[0]!,
    auditSigningPrevious: signers.slice(1).map((s) => ({ publicKey: s.publicKey, keyId: s.keyId })),
    identityBase: current('identity'),
    staffBase: current('staff'),
    idempotency: current('idempotency'),
    consentBase: current('consent'),
    webhooks: current('webhooks'),
    receiptSigning: receiptSigners[0]!,
    receiptSigningPrevious: receiptSigners.slice(1).map((s) => ({ publicKey: s.publicKey, keyId: s.keyId })),
    versions: new Map([...versions].map(([name, list]) => [name, list.map(({ version, key }) => ({ version, key }))])),
  };
}

/** Every version of a module's base key (identity, staff), newest first: new data under the newest, older data opens under its own. */
export function moduleBase(set: ServiceKeySet, name: 'identity' | 'staff'): KeyVersions {
  const list = set.versions.get(name);
  if (list === undefined || list.length === 0) throw new ServiceKeyError(`service key ${name} is missing`);
  return list as unknown as KeyVersions;
}

/** Adds a version of one service key (random); running processes take it up at their next start. */
export async function rotateServiceKey(db: Kysely<Database>, ring: RootRing, clock: Clock, name: ServiceKeyName): Promise<number> {
  const row = await db.selectFrom('service_keys').select((eb) => eb.fn.max('version').as('v')).where('name', '=', name).executeTakeFirst();
  const next = Number(row?.v ?? 0) + 1;
  await insertVersion(db, ring, name, next, randomBytes(32), clock.now().toISOString());
  await sql`UPDATE key_state SET value = value + 1 WHERE name = 'generation'`.execute(db);
  return next;
}

/** Re-wraps up to `batch` service keys not yet under the current root; returns how many it moved. */
export async function rewrapServiceKeys(db: Kysely<Database>, ring: RootRing, batch: number): Promise<number> {
  const target = ring.current();
  const rows = await db.selectFrom('service_keys').selectAll().where('root_kid', '!=', target.kid).limit(batch).execute();
  let moved = 0;
  await db.transaction().execute(async (tx) => {
    for (const row of rows) {
      const raw = unwrapRow(ring, row);
      const result = await tx
        .updateTable('service_keys')
        .set({ root_kid: target.kid, wrapped: target.wrap(raw, aad(row.name, row.version)) })
        .where('name', '=', row.name)
        .where('version', '=', row.version)
        .where('root_kid', '=', row.root_kid)
        .executeTakeFirst();
      moved += Number(result.numUpdatedRows);
    }
  });
  return moved;
}

/**
 * True when the database holds a version of `name` newer than `known`: a process started before a
 * rotation then leaves what it cannot check to processes that hold the new version.
 */
export async function newerServiceKeyExists(db: Kysely<Database>, name: ServiceKeyName, known: number): Promise<boolean> {
  const row = await db.selectFrom('service_keys').select('version').where('name', '=', name).where('version', '>', known).limit(1).executeTakeFirst();
  return row !== undefined;
}

/** Service key versions with their ages and root, for `keys status`. */
export async function serviceKeyStatus(db: Kysely<Database>): Promise<{ name: string; version: number; created_at: string; root_kid: string }[]> {
  return db.selectFrom('service_keys').select(['name', 'version', 'created_at', 'root_kid']).orderBy('name').orderBy('version').execute();
}
