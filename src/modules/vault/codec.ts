import type { Dek } from '../../crypto/key-store.ts';
import { open, seal } from '../../crypto/aead.ts';
import { AppError } from '../../kernel/errors.ts';
import type { Access } from '../policy/service.ts';
import { maskField, type CollectionDef, type StoredValue } from '../inventory/index.ts';
import { VaultErrors } from './errors.ts';

/**
 * How a record's fields are kept: each protected field sealed on its own with AES-256-GCM under
 * the subject's data key, its associated data naming collection, field, record and key version,
 * so a ciphertext copied into another row or field fails to open. Plain (non-personal) fields
 * sit beside them in clear. `f1.<key version>.<base64url>` describes itself for later rotation.
 */
export interface StoredData {
  /** Protected fields: field → ciphertext. */
  e: Record<string, string>;
  /** Plain fields: field → value. */
  p: Record<string, StoredValue>;
}

const aad = (collection: string, field: string, recordId: string, version: number) =>
  `custos:f1|${collection}|${field}|${recordId}|${version}`;

export function sealField(dek: Dek, collection: string, field: string, recordId: string, value: StoredValue): string {
  const box = seal(dek.key, Buffer.from(JSON.stringify(value), 'utf8'), aad(collection, field, recordId, dek.version));
  return `f1.${dek.version}.${box.toString('base64url')}`;
}

export function openField(dek: Dek, collection: string, field: string, recordId: string, sealed: string): StoredValue {
  const [tag, version, body] = sealed.split('.');
  const plain =
    tag === 'f1' && body !== undefined && Number(version) === dek.version
      ? open(dek.key, Buffer.from(body, 'base64url'), aad(collection, field, recordId, dek.version))
      : undefined;
  if (plain === undefined)
    throw new AppError(VaultErrors.VAULT_INTEGRITY_FAILURE.code, 500, 'a stored value failed its integrity check; nothing was released', {
      expose: true,
    });
  return JSON.parse(plain.toString('utf8')) as StoredValue;
}

/** Applies a write (undefined = unchanged, null = cleared) to stored data, sealing what is protected. */
export function applyWrite(
  dek: Dek,
  collection: CollectionDef,
  recordId: string,
  current: StoredData,
  values: Record<string, StoredValue | undefined>,
): StoredData {
  const next: StoredData = { e: { ...current.e }, p: { ...current.p } };
  for (const [name, value] of Object.entries(values)) {
    const field = collection.fields.get(name);
    if (field === undefined || value === undefined) continue;
    delete next.e[name];
    delete next.p[name];
    if (value === null) continue;
    if (field.protection === 'plain') next.p[name] = value;
    else next.e[name] = sealField(dek, collection.name, name, recordId, value);
  }
  return next;
}

/** Opens only the fields the decision allows, masking those it allows masked. */
export function reveal(
  dek: Dek | undefined,
  collection: CollectionDef,
  recordId: string,
  data: StoredData,
  allowed: ReadonlyMap<string, Access>,
): Record<string, StoredValue> {
  const out: Record<string, StoredValue> = {};
  for (const [name, access] of allowed) {
    const field = collection.fields.get(name);
    if (field === undefined) continue;
    let value: StoredValue | undefined;
    if (Object.hasOwn(data.p, name)) value = data.p[name];
    else {
      const sealed = data.e[name];
      if (sealed === undefined || dek === undefined) continue;
      value = openField(dek, collection.name, name, recordId, sealed);
    }
    if (value === undefined) continue;
    out[name] = access === 'masked' ? maskField(field, value) : value;
  }
  return out;
}

export function parseStored(json: string): StoredData {
  const parsed = JSON.parse(json) as Partial<StoredData>;
  return { e: parsed.e ?? {}, p: parsed.p ?? {} };
}
