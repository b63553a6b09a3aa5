import type { KeyObject } from 'node:crypto';
import { z } from 'zod';
import { blindIndex } from '../../../crypto/blind-index.ts';
import { openVersioned, sealVersioned, type KeyVersions } from '../../../crypto/key-versions.ts';

/**
 * The sign-in email is personal data that must still be findable: it is stored as a blind index
 * (HMAC-SHA256 under the service's index key, DESIGN.md "Keys") for lookup, and as AES-256-GCM
 * ciphertext bound to its account for display and mail. Neither the table nor a dump of it reveals
 * an address (GDPR Art. 32(1)(a); ASVS 14.2.x).
 */
const EmailSchema = z.email().max(254);

/** Same rule as the vault's email fields: trimmed, NFC, lower case; undefined when not an address. */
export function normaliseEmail(raw: string): string | undefined {
  if (raw.length > 320) return undefined;
  const n = raw.trim().normalize('NFC').toLowerCase();
  return EmailSchema.safeParse(n).success ? n : undefined;
}

export function emailIndex(key: KeyObject, normalised: string): string {
  return blindIndex(key, 'identity_accounts', 'email', normalised);
}

const aad = (accountId: string) => `custos:identity|identity_accounts|${accountId}|email`;

export function sealEmail(keys: KeyVersions, accountId: string, normalised: string): string {
  return sealVersioned(keys, Buffer.from(normalised, 'utf8'), aad(accountId));
}

/** Undefined when the ciphertext was altered or moved to another account. */
export function openEmail(keys: KeyVersions, accountId: string, sealed: string): string | undefined {
  return openVersioned(keys, sealed, aad(accountId))?.toString('utf8');
}
