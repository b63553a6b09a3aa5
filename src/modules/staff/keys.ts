import { createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { open, seal } from '../../crypto/aead.ts';

/**
 * The keys staff uses, one per role so that no two purposes share a key (NIST SP 800-57 Pt 1
 * §5.2): threat reports and elevation reasons are free text that may name people, so both are
 * AES-256-GCM at rest (GDPR Art. 32(1)(a)), each under its own key. `base` must be a key of its own
 * for staff — HKDF-SHA256 of the root key under `custos/staff/v1`, next to the other root-derived
 * keys — never another role's key; it is only ever used as HKDF input here.
 */
export interface StaffKeys {
  /** Seals threat-report text. */
  readonly reportKey: KeyObject;
  /** Seals the stated reasons of elevation requests. */
  readonly reasonKey: KeyObject;
}

export function deriveStaffKeys(input: { base: KeyObject }): StaffKeys {
  const derive = (label: string) => createSecretKey(Buffer.from(hkdfSync('sha256', input.base, Buffer.alloc(0), `custos/staff/${label}`, 32)));
  return { reportKey: derive('report-seal/v1'), reasonKey: derive('reason-seal/v1') };
}

/** Seals UTF-8 text under `key`, bound by `aad` to where it belongs; base64url. */
export function sealText(key: KeyObject, aad: string, text: string): string {
  return seal(key, Buffer.from(text, 'utf8'), aad).toString('base64url');
}

/** Opens what `sealText` sealed; throws when the box was altered, moved or sealed under another key. */
export function openText(key: KeyObject, aad: string, sealed: string): string {
  const plain = open(key, Buffer.from(sealed, 'base64url'), aad);
  if (plain === undefined) throw new Error('a sealed staff record failed to open (altered, moved or wrong key)');
  return plain.toString('utf8');
}
