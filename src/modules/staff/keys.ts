import type { KeyObject } from 'node:crypto';
import { deriveVersions, openVersioned, sealVersioned, versionsOf, type KeyVersions } from '../../crypto/key-versions.ts';

/**
 * The keys staff uses, one per role so that no two purposes share a key (NIST SP 800-57 Pt 1
 * §5.2): threat reports and elevation reasons are free text that may name people, so both are
 * AES-256-GCM at rest (GDPR Art. 32(1)(a)), each under its own key. `base` must be a key of its own
 * for staff — HKDF-SHA256 of the root key under `custos/staff/v1`, next to the other root-derived
 * keys — never another role's key; it is only ever used as HKDF input here.
 */
export interface StaffKeys {
  /** Seals threat-report text. */
  readonly reportKey: KeyVersions;
  /** Seals the stated reasons of elevation requests. */
  readonly reasonKey: KeyVersions;
}

/**
 * Version for version of the service key `staff` (every version, newest first; `custos keys
 * rotate --key staff` adds one): new text is sealed under the newest, older text opens under the
 * version it names.
 */
export function deriveStaffKeys(input: { base: KeyObject | KeyVersions }): StaffKeys {
  const base = versionsOf(input.base);
  return { reportKey: deriveVersions(base, 'custos/staff/report-seal/v1'), reasonKey: deriveVersions(base, 'custos/staff/reason-seal/v1') };
}

/** Seals UTF-8 text under the newest version, bound by `aad` to where it belongs (key-versions.ts format). */
export function sealText(keys: KeyVersions, aad: string, text: string): string {
  return sealVersioned(keys, Buffer.from(text, 'utf8'), aad);
}

/** Opens what `sealText` sealed; throws when the box was altered, moved or sealed under a key not held. */
export function openText(keys: KeyVersions, aad: string, sealed: string): string {
  const plain = openVersioned(keys, sealed, aad);
  if (plain === undefined) throw new Error('a sealed staff record failed to open (altered, moved or wrong key)');
  return plain.toString('utf8');
}
