import { createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { fixedBlindIndexKeys, type BlindIndexKeys } from '../../crypto/blind-index.ts';

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
  readonly emailSeal: KeyObject;
  /** AES-256-GCM of TOTP shared secrets at rest (ASVS 6.5.x, 11.x: secrets encrypted at rest). */
  readonly totpSeal: KeyObject;
  /** HMAC-SHA256 of recovery codes (≥ 112-bit codes: a keyed hash suffices, ASVS 6.5.2). */
  readonly recoveryMac: KeyObject;
  /** HMAC-SHA256 of the secrets of email-verification and password-reset links. */
  readonly tokenMac: KeyObject;
  /** HMAC-SHA256 of throttle keys, so that no identifier or IP address is stored in the clear. */
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
 * Derives the identity keys. `base` should be a key of its own for identity (for example HKDF of
 * the root key under `custos/identity/v1`); it is only ever used as HKDF input here.
 */
export function deriveIdentityKeys(input: { base: KeyObject; blindIndex: BlindIndexKeys | KeyObject }): IdentityKeys {
  const derive = (label: string) =>
    createSecretKey(Buffer.from(hkdfSync('sha256', input.base, Buffer.alloc(0), `custos/identity/${label}`, 32)));
  return {
    emailIndex: 'lookup' in input.blindIndex ? input.blindIndex : fixedBlindIndexKeys(input.blindIndex),
    emailSeal: derive(LABELS.emailSeal),
    totpSeal: derive(LABELS.totpSeal),
    recoveryMac: derive(LABELS.recoveryMac),
    tokenMac: derive(LABELS.tokenMac),
    throttleMac: derive(LABELS.throttleMac),
  };
}
