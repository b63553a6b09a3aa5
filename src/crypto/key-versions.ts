import { createHmac, hkdfSync, createSecretKey, timingSafeEqual, type KeyObject } from 'node:crypto';
import { open, seal } from './aead.ts';

/**
 * The versions of one module key, newest first: the newest seals and MACs, every version opens
 * and verifies what was made under it (the identity and staff keys, rotated with
 * `custos keys rotate --key identity|staff`). A sealed text names its version (`v2.` before the
 * base64url box; none for version 1, the format written before keys rotated), so opening picks
 * its key instead of trying each. A MAC names nothing: it is checked under each version, newest
 * first, in constant time per comparison.
 */
export interface KeyVersion {
  readonly version: number;
  readonly key: KeyObject;
}
export type KeyVersions = readonly [KeyVersion, ...KeyVersion[]];

/** One key as version 1 (tests and fixtures holding a key of their own). */
export const versionsOf = (key: KeyObject | KeyVersions): KeyVersions => ('type' in key ? [{ version: 1, key }] : key);

/** Each version of a base key turned into a key of one role (HKDF-SHA256, RFC 5869), version for version. */
export function deriveVersions(base: KeyVersions, info: string): KeyVersions {
  return base.map((b) => ({ version: b.version, key: createSecretKey(Buffer.from(hkdfSync('sha256', b.key, Buffer.alloc(0), info, 32))) })) as unknown as KeyVersions;
}

export function sealVersioned(keys: KeyVersions, plain: Buffer, aad: string): string {
  const { version, key } = keys[0];
  const box = seal(key, plain, aad).toString('base64url');
  return version === 1 ? box : `v${version}.${box}`;
}

/** Undefined when the box was altered, moved, or names a version no longer held. */
export function openVersioned(keys: KeyVersions, sealed: string, aad: string): Buffer | undefined {
  const dot = sealed.indexOf('.');
  const named = dot < 0 ? undefined : /^v([1-9]\d{0,8})$/.exec(sealed.slice(0, dot))?.[1];
  if (dot >= 0 && named === undefined) return undefined;
  const version = named === undefined ? 1 : Number(named);
  const key = keys.find((k) => k.version === version)?.key;
  return key === undefined ? undefined : open(key, Buffer.from(sealed.slice(dot + 1), 'base64url'), aad);
}

/** HMAC-SHA256 under the newest version (what is stored). */
export const macNewest = (keys: KeyVersions, text: string): Buffer => createHmac('sha256', keys[0].key).update(text, 'utf8').digest();

/** Whether `stored` is the HMAC-SHA256 of `text` under any version. */
export function macMatches(keys: KeyVersions, text: string, stored: Buffer): boolean {
  let match = false;
  for (const k of keys) {
    const presented = createHmac('sha256', k.key).update(text, 'utf8').digest();
    if (stored.length === presented.length && timingSafeEqual(stored, presented)) match = true;
  }
  return match;
}
