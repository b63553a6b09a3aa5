import { dictionary } from '@zxcvbn-ts/language-common';

/**
 * The offline blocklist: the 49,233 most common passwords of public breach corpora as shipped by
 * @zxcvbn-ts/language-common (`passwords-common`, lower case). NIST SP 800-63B §3.1.1.2 asks that
 * a new password be compared whole against such a list; ASVS 6.2.4 asks for at least the top
 * 3,000. Compared case-insensitively, so `Password1` is refused like `password1`.
 */
let list: ReadonlySet<string> | undefined;

function commonPasswords(): ReadonlySet<string> {
  list ??= new Set(dictionary['passwords-common'].map((p) => p.normalize('NFKC').toLowerCase()));
  return list;
}

export function isCommonPassword(normalised: string): boolean {
  return commonPasswords().has(normalised.toLowerCase());
}

export function commonPasswordCount(): number {
  return commonPasswords().size;
}
