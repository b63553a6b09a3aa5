import { randomBytes } from 'node:crypto';

/**
 * Ids are a type prefix and 26 Crockford base32 characters: 48 bits of milliseconds (so new rows
 * land at the end of a B-tree index) and 80 random bits (so ids cannot be guessed or counted).
 * Branded types keep a customer id from being passed where an order id belongs.
 */
export type Brand<T, B extends string> = T & { readonly __brand: B };
export type CustomerId = Brand<string, 'CustomerId'>;
export type AddressId = Brand<string, 'AddressId'>;
export type OrderId = Brand<string, 'OrderId'>;
export type ApiKeyId = Brand<string, 'ApiKeyId'>;

export const ID_PREFIX = {
  customer: 'cus',
  address: 'adr',
  order: 'ord',
  apiKey: 'key',
} as const;

const ALPHABET = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

function encodeTime(ms: number): string {
  let out = '';
  let t = ms;
  for (let i = 0; i < 10; i++) {
    out = ALPHABET[t % 32]! + out;
    t = Math.floor(t / 32);
  }
  return out;
}

/** Crockford base32 of `bytes` (5 bits a character; a length that is a multiple of 5 bytes loses nothing). */
export function crockfordBase32(bytes: Uint8Array): string {
  let bits = 0;
  let value = 0;
  let out = '';
  for (const byte of bytes) {
    value = (value << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += ALPHABET[(value >>> (bits - 5)) & 31]!;
      bits -= 5;
    }
    value &= (1 << bits) - 1;
  }
  return out;
}

export function newId<P extends string>(prefix: P, now: number = Date.now()): string {
  return `${prefix}_${encodeTime(now)}${crockfordBase32(randomBytes(10))}`;
}

const ID_BODY = /^[0-9A-HJKMNP-TV-Z]{26}$/;

/** True when `value` is a well-formed id of the given prefix; never touches storage. */
export function isId(prefix: string, value: string): boolean {
  return value.length === prefix.length + 27 && value.startsWith(`${prefix}_`) && ID_BODY.test(value.slice(prefix.length + 1));
}
