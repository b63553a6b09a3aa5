import { createHmac, randomBytes, randomInt, type KeyObject } from 'node:crypto';
import { crockfordBase32 } from '../../kernel/ids.ts';

/**
 * Card data rules as pure functions: Luhn, brand from IIN ranges with each brand's lengths,
 * expiry, masking (PCI DSS 3.4.1: at most BIN + last four shown) and token formats (random,
 * never derived from the PAN). Nothing here logs or throws with a card number in the message.
 */

export type Brand = 'visa' | 'mastercard' | 'amex' | 'discover' | 'diners' | 'jcb' | 'unionpay' | 'maestro';

interface IinRange {
  readonly brand: Brand;
  /** Inclusive range over the first `prefixLength` digits. */
  readonly from: number;
  readonly to: number;
  readonly prefixLength: number;
  readonly lengths: readonly number[];
}

const r = (brand: Brand, from: number, to: number, lengths: readonly number[]): IinRange => ({
  brand,
  from,
  to,
  prefixLength: String(from).length,
  lengths,
});

const L16_19 = [16, 17, 18, 19];

/**
 * The IIN ranges Custos recognises, most specific first (a longer prefix wins over a shorter one
 * that contains it, e.g. Discover's 622126–622925 inside UnionPay's 62).
 */
export const IIN_RANGES: readonly IinRange[] = [
  r('discover', 622126, 622925, L16_19),
  r('mastercard', 2221, 2720, [16]),
  r('jcb', 3528, 3589, L16_19),
  r('discover', 6011, 6011, L16_19),
  r('diners', 300, 305, [14, 15, 16, 17, 18, 19]),
  r('discover', 644, 649, L16_19),
  r('amex', 34, 34, [15]),
  r('amex', 37, 37, [15]),
  r('diners', 36, 36, [14, 15, 16, 17, 18, 19]),
  r('diners', 38, 39, [16, 17, 18, 19]),
  r('mastercard', 51, 55, [16]),
  r('maestro', 50, 50, [12, 13, 14, 15, 16, 17, 18, 19]),
  r('maestro', 56, 58, [12, 13, 14, 15, 16, 17, 18, 19]),
  r('unionpay', 62, 62, L16_19),
  r('discover', 65, 65, L16_19),
  r('maestro', 67, 67, [12, 13, 14, 15, 16, 17, 18, 19]),
  r('visa', 4, 4, [13, 16, 19]),
];

export const PAN_MIN_LENGTH = 12;
export const PAN_MAX_LENGTH = 19;

/** True when `digits` (ASCII digits only) passes the Luhn check (ISO/IEC 7812-1 Annex B). */
export function luhnValid(digits: string): boolean {
  if (!/^\d+$/.test(digits)) return false;
  return luhnSum(digits, false) % 10 === 0;
}

/** The digit that, appended to `body`, makes it pass the Luhn check. */
export function luhnCheckDigit(body: string): string {
  return String((10 - (luhnSum(body, true) % 10)) % 10);
}

function luhnSum(digits: string, doubleLast: boolean): number {
  let sum = 0;
  let double = doubleLast;
  for (let i = digits.length - 1; i >= 0; i--) {
    let d = digits.charCodeAt(i) - 48;
    if (double) {
      d *= 2;
      if (d > 9) d -= 9;
    }
    sum += d;
    double = !double;
  }
  return sum;
}

/** The brand whose IIN range holds the PAN's prefix; undefined when none does or the length is not the brand's. */
export function detectBrand(pan: string): Brand | undefined {
  for (const range of IIN_RANGES) {
    if (pan.length < range.prefixLength) continue;
    const prefix = Number(pan.slice(0, range.prefixLength));
    if (prefix >= range.from && prefix <= range.to) return range.lengths.includes(pan.length) ? range.brand : undefined;
  }
  return undefined;
}

/**
 * True when `digits` has the shape of a payment card number: a known IIN range, one of that
 * brand's lengths, and the Luhn check, all three together (the free-text check of the vault).
 */
export function looksLikePan(digits: string): boolean {
  return /^\d+$/.test(digits) && detectBrand(digits) !== undefined && luhnValid(digits);
}

/**
 * Runs of digits (spaces and hyphens between them allowed, as people write card numbers) in free
 * text that look like a card number; answers only whether there is one, never which.
 */
export function containsPan(text: string): boolean {
  for (const match of text.matchAll(/\d[\d -]{10,40}\d/g)) {
    const digits = match[0].replace(/[ -]/g, '');
    if (digits.length < PAN_MIN_LENGTH) continue;
    // Every window of every card length inside a longer run, so digits glued to a PAN still count.
    for (let len = PAN_MIN_LENGTH; len <= Math.min(PAN_MAX_LENGTH, digits.length); len++)
      for (let start = 0; start + len <= digits.length; start++) if (looksLikePan(digits.slice(start, start + len))) return true;
  }
  return false;
}

export type PanProblem = 'not_digits' | 'length' | 'luhn' | 'brand';

/** Why a PAN is refused, or undefined when it is acceptable. */
export function panProblem(pan: string): PanProblem | undefined {
  if (!/^\d+$/.test(pan)) return 'not_digits';
  if (pan.length < PAN_MIN_LENGTH || pan.length > PAN_MAX_LENGTH) return 'length';
  if (!luhnValid(pan)) return 'luhn';
  if (detectBrand(pan) === undefined) return 'brand';
  return undefined;
}

/** How many years ahead an expiry may lie; card issuers use far fewer. */
export const EXPIRY_MAX_YEARS_AHEAD = 20;

export type ExpiryProblem = 'impossible' | 'expired';

/**
 * A card is valid through the last day of its expiry month (UTC). An expiry month outside 1–12, or
 * a year more than 20 years ahead, is impossible; a past month is expired.
 */
export function expiryProblem(month: number, year: number, now: Date): ExpiryProblem | undefined {
  if (!Number.isInteger(month) || !Number.isInteger(year) || month < 1 || month > 12) return 'impossible';
  const thisYear = now.getUTCFullYear();
  if (year > thisYear + EXPIRY_MAX_YEARS_AHEAD || year < 2000) return 'impossible';
  if (year < thisYear || (year === thisYear && month < now.getUTCMonth() + 1)) return 'expired';
  return undefined;
}

/** The first instant after the card's expiry month (UTC). */
export function expiryEnd(month: number, year: number): Date {
  return new Date(Date.UTC(year, month, 1));
}

/** The BIN shown with a card: its first six digits (PCI DSS 3.4.1). */
export function binOf(pan: string): string {
  return pan.slice(0, 6);
}

export function last4Of(pan: string): string {
  return pan.slice(-4);
}

/**
 * The PAN masked for display: at most the BIN and the last four digits, the rest `*`
 * (PCI DSS 3.4.1). A PAN shorter than BIN + last four + two shows only the last four.
 */
export function maskPan(pan: string): string {
  const keepBin = pan.length >= 12;
  const head = keepBin ? binOf(pan) : '';
  return head + '*'.repeat(pan.length - head.length - 4) + last4Of(pan);
}

export type TokenFormat = 'opaque' | 'format_preserving';

/** Opaque tokens: `tok_` and 26 Crockford base32 characters, 130 random bits. */
export const OPAQUE_TOKEN = /^tok_[0-9A-HJKMNP-TV-Z]{26}$/;
/** Format-preserving tokens: the PAN's length in digits. */
export const FP_TOKEN = /^\d{12,19}$/;

export function isToken(value: string): boolean {
  return OPAQUE_TOKEN.test(value) || FP_TOKEN.test(value);
}

export function opaqueToken(): string {
  return `tok_${crockfordBase32(randomBytes(17)).slice(0, 26)}`;
}

/** At least this many digits of a format-preserving token are random. */
export const FP_MIN_RANDOM_DIGITS = 6;

/**
 * A format-preserving token: the PAN's length, its last four kept, its BIN kept only when at least
 * six digits stay random (PANs of 16 digits or more), every other digit random, and the whole
 * failing the Luhn check so that it can never pass for a card. Random, never derived from the PAN.
 */
export function formatPreservingToken(pan: string): string {
  const keepBin = pan.length - 6 - 4 >= FP_MIN_RANDOM_DIGITS;
  const head = keepBin ? binOf(pan) : '';
  const randomCount = pan.length - head.length - 4;
  const digits: number[] = [];
  for (let i = 0; i < randomCount; i++) digits.push(randomInt(10));
  // A leading zero keeps the token's length visible as a number too, but is no card: allowed.
  let token = head + digits.join('') + last4Of(pan);
  // One changed digit always changes the Luhn sum (Luhn detects every single-digit error).
  if (luhnValid(token)) {
    const at = head.length + randomCount - 1;
    const changed = (Number(token[at]) + 1) % 10;
    token = token.slice(0, at) + String(changed) + token.slice(at + 1);
  }
  return token;
}

export function newToken(format: TokenFormat, pan: string): string {
  return format === 'opaque' ? opaqueToken() : formatPreservingToken(pan);
}

/**
 * The keyed-hash index of a PAN for deterministic mode (PCI DSS 3.5.1.1: a keyed cryptographic
 * hash of the entire PAN): HMAC-SHA256 under the card-index key, domain-separated, so duplicates
 * are found without the PAN being derivable from the index or the token.
 */
export function panFingerprint(key: KeyObject, pan: string): string {
  return createHmac('sha256', key).update(`custos:card-pan\u0000${pan}`, 'utf8').digest('base64url');
}
