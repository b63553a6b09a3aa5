import type { KeyObject } from 'node:crypto';

/**
 * Whether an asymmetric key gives at least 112 bits of security, the floor of NIST SP 800-57
 * Part 1 Rev. 5 (Table 2) and SP 800-131A Rev. 2: RSA (and DSA) from 2048 bits, elliptic curves
 * from 224 bits; Ed25519 and Ed448 always.
 */
const NIST_NAMES: Record<string, string> = { prime256v1: 'P-256', secp384r1: 'P-384', secp521r1: 'P-521', secp224r1: 'P-224', prime192v1: 'P-192' };

export function keyStrength(key: KeyObject): { readonly weak: boolean; readonly text: string } {
  const type = key.asymmetricKeyType ?? 'unknown';
  const details = key.asymmetricKeyDetails ?? {};
  if (type === 'rsa' || type === 'rsa-pss' || type === 'dsa') {
    const bits = details.modulusLength ?? 0;
    return { weak: bits < 2048, text: `${type.toUpperCase()} ${bits} bits` };
  }
  if (type === 'ec') {
    const curve = details.namedCurve ?? 'unknown curve';
    const bits = Number(/(\d{3})/.exec(curve)?.[1] ?? 0);
    return { weak: bits < 224, text: `EC ${NIST_NAMES[curve] ?? curve}` };
  }
  if (type === 'ed25519' || type === 'ed448') return { weak: false, text: type === 'ed25519' ? 'Ed25519' : 'Ed448' };
  return { weak: true, text: `an unrecognised ${type} key` };
}

/** What a weak key needs, for the one-line fixes. */
export const STRONG_KEY = 'a new key of RSA 2048 bits or more, or EC P-256 (NIST SP 800-57 Part 1: at least 112-bit security)';
