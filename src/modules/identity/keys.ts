import type { KeyObject } from 'node:crypto';
import { fixedBlindIndexKeys, type BlindIndexKeys } from '../../crypto/blind-index.ts';
import { deriveVersions, versionsOf, type KeyVersions } from '../../crypto/key-versions.ts';

/**
 * The keys identity uses, one per role so that no two purposes share a key (NIST SP 800-57 Pt 1
 * §5.2). `emailIndex` is the service-wide blind-index key (RootKeys.blindIndex) because sign-in
 * lookup is a blind index like any other; the rest are derived with HKDF-SHA256 (RFC 5869) from
 * one identity base key under their own labels.
 */
export interface IdentityKeys {
  /** HMAC-SHA256 blind index of the account email: the service's blind-index key versions in force. */
  readonly emailIndex: BlindIndexKeys;
  /** AES-256-GCM of the account email at rest. */
  readonly emailSeal: KeyVersions;
  /** AES-256-GCM of TOTP shared secrets at rest (ASVS 6.5.x, 11.x: secrets encrypted at rest). */
  readonly totpSeal: KeyVersions;
  /** HMAC-SHA256 of recovery codes (≥ 112-bit codes: a keyed hash suffices, ASVS 6.5.2). */
  readonly recoveryMac: KeyVersions;
  /** HMAC-SHA256 of the secrets of email-verification and password-reset links. */
  readonly tokenMac: KeyVersions;
  /**
   * HMAC-SHA256 of throttle keys, so that no identifier or IP address is stored in the clear: the
   * newest version only (counters are short-lived; a rotation starts them over once).
   */
  readonly throttleMac: KeyObject;
}

const LABELS = {
  emailSeal: 'email-seal/v1',
  totpSeal: 'totp-seal/v1',
  recoveryMac: 'recovery-mac/v1',
  tokenMac: 'token-mac/v1',
  throttleMac: 'throttle-mac/v1',
} as const;

/**
 * Derives the identity keys, version for version of `base`: the service key `identity` (every
 * version, newest first; `custos keys rotate --key identity` adds one), only ever used as HKDF
 * input here. What was sealed or MACed under an older version still opens and verifies.
 */
export function deriveIdentityKeys(input: { base: KeyObject | KeyVersions; blindIndex: BlindIndexKeys | KeyObject }): IdentityKeys {
  const base = versionsOf(input.base);
  const derive = (label: string) => deriveVersions(base, `custos/identity/${label}`);
  return {
    emailIndex: 'lookup' in input.blindIndex ? input.blindIndex : fixedBlindIndexKeys(input.blindIndex),
    emailSeal: derive(LABELS.emailSeal),
    totpSeal: derive(LABELS.totpSeal),
    recoveryMac: derive(LABELS.recoveryMac),
    tokenMac: derive(LABELS.tokenMac),
    throttleMac: derive(LABELS.throttleMac)[0].key,
  };
}
