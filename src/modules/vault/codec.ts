import type { Dek } from '../../crypto/key-store.ts';
import { open, seal } from '../../crypto/aead.ts';
import { AppError } from '../../kernel/errors.ts';
import type { Access } from '../policy/service.ts';
import { maskField, type CollectionDef, type StoredValue } from '../inventory/index.ts';
import { VaultErrors } from './errors.ts';

/**
 * How a record is kept (docs/adr/0003-record-envelope.md): its protected fields sealed together
 * as ONE AES-256-GCM envelope under the subject's data key, its plain (non-personal) fields beside
 * it in clear. The envelope's associated data names collection, record id, subject, data-key
 * version, record version and the plain fields, so a field added, removed or swapped inside the
 * record, a plain field changed, or an envelope moved to another row, collection or customer
 * fails to open. `r1.<data-key version>.<base64url>` describes itself (format, key version), so a
 * rotation needs no schema change.
 *
 * Records written before envelopes keep each protected field in its own box (`f1.<version>.…`,
 * `e` below) until `custos keys reseal` converts them; they are read as long as the store is not
 * marked re-sealed.
 */
export type Fields = Record<string, StoredValue>;

/** A record as stored in `records.data`. */
export type StoredData = Sealed | { e: Record<string, string>; p: Fields };
/** `s`: the envelope; `n`: the names of the protected fields in it (bound too), so that a read's audit entry names them before anything is opened. */
type Sealed = { s: string; n: string[]; p: Fields };

/** A record opened: every protected field (`e`) and plain field (`p`) as values. */
export interface OpenedData {
  e: Fields;
  p: Fields;
}

/** Where a record sits: everything its envelope is bound to besides the plain fields. */
export interface RecordPlace {
  readonly collection: string;
  readonly id: string;
  readonly subjectId: string;
  /** The record version this envelope belongs to. */
  readonly version: number;
}

const FORMAT = 'r1';
const LEGACY = 'f1';

/** JSON with object keys sorted at every depth: one encoding per value. */
export function canonical(value: StoredValue): string {
  if (value === null || typeof value !== 'object') return JSON.stringify(value);
  if (Array.isArray(value)) return `[${value.map(canonical).join(',')}]`;
  const keys = Object.keys(value).sort();
  return `{${keys.map((k) => `${JSON.stringify(k)}:${canonical(value[k]!)}`).join(',')}}`;
}

const recordAad = (place: RecordPlace, dekVersion: number, names: readonly string[], plain: Fields) =>
  JSON.stringify(['custos:r1', place.collection, place.id, place.subjectId, dekVersion, place.version, names, canonical(plain)]);

const legacyAad = (collection: string, field: string, recordId: string, version: number) =>
  `custos:f1|${collection}|${field}|${recordId}|${version}`;

export function integrityFailure(): AppError {
  return new AppError(VaultErrors.VAULT_INTEGRITY_FAILURE.code, 500, 'a stored value failed its integrity check; nothing was released', {
    expose: true,
  });
}

/** Seals a record whole: the stored `data` text. */
export function sealRecord(dek: Dek, place: RecordPlace, data: OpenedData): string {
  const names = Object.keys(data.e).sort();
  const box = seal(dek.key, Buffer.from(canonical(data.e), 'utf8'), recordAad(place, dek.version, names, data.p));
  return JSON.stringify({ s: `${FORMAT}.${dek.version}.${box.toString('base64url')}`, n: names, p: data.p });
}

export function parseStored(json: string): StoredData {
  const parsed = JSON.parse(json) as { s?: unknown; n?: unknown; e?: unknown; p?: unknown };
  const p = (parsed.p ?? {}) as Fields;
  if (typeof parsed.s === 'string') return { s: parsed.s, n: Array.isArray(parsed.n) ? parsed.n.map(String) : [], p };
  return { e: (parsed.e ?? {}) as Record<string, string>, p };
}

/** Whether stored data is still in the per-field format (to be re-sealed). */
export const isLegacy = (data: StoredData): data is { e: Record<string, string>; p: Fields } => !('s' in data);

/** The data-key version stored data was sealed under (every field of a per-field record shares it). */
export function sealedUnder(data: StoredData): number | undefined {
  const first = isLegacy(data) ? Object.values(data.e)[0] : data.s;
  if (first === undefined) return undefined;
  const version = Number(first.split('.', 2)[1]);
  return Number.isSafeInteger(version) ? version : undefined;
}

function openLegacyField(dek: Dek, collection: string, field: string, recordId: string, sealed: string): StoredValue {
  const [tag, version, body] = sealed.split('.');
  const plain =
    tag === LEGACY && body !== undefined && Number(version) === dek.version
      ? open(dek.key, Buffer.from(body, 'base64url'), legacyAad(collection, field, recordId, dek.version))
      : undefined;
  if (plain === undefined) throw integrityFailure();
  return JSON.parse(plain.toString('utf8')) as StoredValue;
}

/**
 * Opens a stored record: its envelope with one AES-GCM open, or (until the store is re-sealed,
 * `legacy` true) each per-field box. `dek` is the key of the version the data names; undefined
 * when the subject has none (erased: the plain fields alone are returned). Anything
 * altered, moved or sealed elsewhere throws VAULT_INTEGRITY_FAILURE.
 */
export function openRecord(dek: Dek | undefined, place: RecordPlace, data: StoredData, legacy: boolean): OpenedData {
  if (isLegacy(data) && !legacy) throw integrityFailure();
  // A subject whose data key is gone (erased): the protected fields are unreadable, the plain ones stand.
  if (dek === undefined) return { e: {}, p: { ...data.p } };
  if (isLegacy(data)) {
    const e: Fields = {};
    for (const [name, sealed] of Object.entries(data.e)) {
      e[name] = openLegacyField(dek, place.collection, name, place.id, sealed);
    }
    return { e, p: { ...data.p } };
  }
  const [tag, version, body] = data.s.split('.');
  const plain =
    tag === FORMAT && body !== undefined && Number(version) === dek.version
      ? open(dek.key, Buffer.from(body, 'base64url'), recordAad(place, dek.version, data.n, data.p))
      : undefined;
  if (plain === undefined) throw integrityFailure();
  const e = JSON.parse(plain.toString('utf8')) as unknown;
  if (e === null || typeof e !== 'object' || Array.isArray(e) || Object.keys(e).sort().join('\0') !== data.n.join('\0')) throw integrityFailure();
  return { e: e as Fields, p: { ...data.p } };
}

/** Applies a write (undefined = unchanged, null = cleared) to an opened record. */
export function applyWrite(collection: CollectionDef, current: OpenedData, values: Record<string, StoredValue | undefined>): OpenedData {
  const next: OpenedData = { e: { ...current.e }, p: { ...current.p } };
  for (const [name, value] of Object.entries(values)) {
    const field = collection.fields.get(name);
    if (field === undefined || value === undefined) continue;
    delete next.e[name];
    delete next.p[name];
    if (value === null) continue;
    if (field.protection === 'plain') next.p[name] = value;
    else next.e[name] = value;
  }
  return next;
}

/**
 * The fields the decision allows, masked where it allows them masked. The record was opened whole:
 * fields the decision withholds were decrypted in memory too and are dropped here, never returned.
 */
export function reveal(collection: CollectionDef, data: OpenedData, allowed: ReadonlyMap<string, Access>): Fields {
  const out: Fields = {};
  for (const [name, access] of allowed) {
    const field = collection.fields.get(name);
    if (field === undefined) continue;
    const value = Object.hasOwn(data.p, name) ? data.p[name] : Object.hasOwn(data.e, name) ? data.e[name] : undefined;
    if (value === undefined) continue;
    out[name] = access === 'masked' ? maskField(field, value) : value;
  }
  return out;
}

/** Whether a stored record holds a field (protected or plain), without opening it. */
export function holdsField(data: StoredData, name: string): boolean {
  return Object.hasOwn(data.p, name) || (isLegacy(data) ? Object.hasOwn(data.e, name) : data.n.includes(name));
}
