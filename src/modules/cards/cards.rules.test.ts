import { createSecretKey, randomBytes } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  binOf,
  containsPan,
  detectBrand,
  expiryProblem,
  formatPreservingToken,
  FP_MIN_RANDOM_DIGITS,
  last4Of,
  luhnCheckDigit,
  luhnValid,
  maskPan,
  opaqueToken,
  OPAQUE_TOKEN,
  panFingerprint,
  panProblem,
} from './card-rules.ts';

const digitString = (min: number, max: number) => fc.array(fc.integer({ min: 0, max: 9 }), { minLength: min, maxLength: max }).map((d) => d.join(''));
/** A Luhn-valid card number of a given brand prefix and length. */
const cardOf = (prefix: string, length: number) =>
  digitString(length - prefix.length - 1, length - prefix.length - 1).map((body) => prefix + body + luhnCheckDigit(prefix + body));
const anyCard = fc.oneof(
  cardOf('4', 16),
  cardOf('4', 13),
  cardOf('51', 16),
  cardOf('2221', 16),
  cardOf('34', 15),
  cardOf('37', 15),
  cardOf('6011', 16),
  cardOf('3530', 16),
  cardOf('36', 14),
  cardOf('62', 19),
);

describe('Luhn', () => {
  it('known card numbers pass, one changed digit fails', () => {
    for (const pan of ['4111111111111111', '5555555555554444', '378282246310005', '6011111111111117', '3530111333300000']) expect(luhnValid(pan)).toBe(true);
    expect(luhnValid('4111111111111112')).toBe(false);
  });
  it('the check digit makes any body pass, and every single-digit change fails', () => {
    fc.assert(
      fc.property(digitString(11, 18), fc.nat(), fc.integer({ min: 1, max: 9 }), (body, at, delta) => {
        const pan = body + luhnCheckDigit(body);
        expect(luhnValid(pan)).toBe(true);
        const i = at % pan.length;
        const changed = pan.slice(0, i) + String((Number(pan[i]) + delta) % 10) + pan.slice(i + 1);
        expect(luhnValid(changed)).toBe(false);
      }),
    );
  });
  it('non-digits never pass', () => {
    expect(luhnValid('4111 1111 1111 1111')).toBe(false);
    expect(luhnValid('')).toBe(false);
  });
});

describe('brand from IIN ranges and lengths', () => {
  it('detects the brands of the test card numbers', () => {
    expect(detectBrand('4111111111111111')).toBe('visa');
    expect(detectBrand('4222222222222')).toBe('visa');
    expect(detectBrand('5555555555554444')).toBe('mastercard');
    expect(detectBrand('2223003122003222')).toBe('mastercard');
    expect(detectBrand('378282246310005')).toBe('amex');
    expect(detectBrand('6011111111111117')).toBe('discover');
    expect(detectBrand('6221260000000000')).toBe('discover');
    expect(detectBrand('6200000000000005')).toBe('unionpay');
    expect(detectBrand('3530111333300000')).toBe('jcb');
    expect(detectBrand('36227206271667')).toBe('diners');
  });
  it('a brand prefix with a length that brand never uses has no brand', () => {
    expect(detectBrand('41111111111111')).toBeUndefined(); // Visa, 14 digits
    expect(detectBrand('37828224631000')).toBeUndefined(); // Amex, 14 digits
    expect(detectBrand('555555555555444')).toBeUndefined(); // Mastercard, 15 digits
    expect(detectBrand('9111111111111111')).toBeUndefined();
  });
  it('panProblem names each refusal', () => {
    expect(panProblem('4111111111111111')).toBeUndefined();
    expect(panProblem('4111-1111-1111-1111')).toBe('not_digits');
    expect(panProblem('41111111111')).toBe('length');
    expect(panProblem('4111111111111112')).toBe('luhn');
    expect(panProblem('9111111111111110')).toBe('brand');
  });
});

describe('expiry', () => {
  const now = new Date('2026-12-03T12:00:00Z');
  it('valid through the expiry month, expired after, impossible outside 1–12 or far ahead', () => {
    expect(expiryProblem(12, 2026, now)).toBeUndefined();
    expect(expiryProblem(11, 2026, now)).toBe('expired');
    expect(expiryProblem(1, 2025, now)).toBe('expired');
    expect(expiryProblem(13, 2027, now)).toBe('impossible');
    expect(expiryProblem(0, 2027, now)).toBe('impossible');
    expect(expiryProblem(1, 2047, now)).toBe('impossible');
    expect(expiryProblem(12, 2046, now)).toBeUndefined();
  });
  it('any month 1–12 of a year within the window is either fine or expired, never impossible', () => {
    fc.assert(
      fc.property(fc.integer({ min: 1, max: 12 }), fc.integer({ min: 2000, max: 2046 }), (m, y) => {
        expect(expiryProblem(m, y, now)).not.toBe('impossible');
      }),
    );
  });
});

describe('masking (PCI DSS 3.4.1)', () => {
  it('shows at most the BIN and the last four digits', () => {
    fc.assert(
      fc.property(anyCard, (pan) => {
        const masked = maskPan(pan);
        expect(masked).toHaveLength(pan.length);
        const shown = masked.replace(/\*/g, '');
        expect(shown.length).toBeLessThanOrEqual(10);
        expect(masked.startsWith(binOf(pan))).toBe(true);
        expect(masked.endsWith(last4Of(pan))).toBe(true);
        expect(masked.slice(6, -4)).toMatch(/^\*+$/);
      }),
    );
  });
});

describe('tokens', () => {
  it('opaque tokens are tok_ and random', () => {
    const a = opaqueToken();
    expect(a).toMatch(OPAQUE_TOKEN);
    expect(opaqueToken()).not.toBe(a);
  });
  it('format-preserving: same length, last four kept, fails Luhn, BIN kept only when six digits stay random', () => {
    fc.assert(
      fc.property(anyCard, (pan) => {
        const token = formatPreservingToken(pan);
        expect(token).toMatch(/^\d+$/);
        expect(token).toHaveLength(pan.length);
        expect(token.slice(-4)).toBe(pan.slice(-4));
        expect(luhnValid(token)).toBe(false);
        expect(token).not.toBe(pan);
        const keepsBin = pan.length - 10 >= FP_MIN_RANDOM_DIGITS;
        if (keepsBin) expect(token.slice(0, 6)).toBe(pan.slice(0, 6));
      }),
    );
  });
  it('format-preserving tokens of one PAN differ (random, not derived from the PAN)', () => {
    const pan = '4111111111111111';
    const tokens = new Set(Array.from({ length: 50 }, () => formatPreservingToken(pan)));
    expect(tokens.size).toBeGreaterThan(45);
  });
  it('a 15-digit Amex keeps no BIN (only five digits would stay random)', () => {
    const tokens = Array.from({ length: 40 }, () => formatPreservingToken('378282246310005'));
    expect(tokens.some((t) => !t.startsWith('378282'))).toBe(true);
  });
});

describe('keyed-hash index (PCI DSS 3.5.1.1)', () => {
  it('same PAN and key give the same index; another key or PAN another one; the index holds no digits of the PAN in clear', () => {
    const k1 = createSecretKey(randomBytes(32));
    const k2 = createSecretKey(randomBytes(32));
    fc.assert(
      fc.property(anyCard, anyCard, (a, b) => {
        expect(panFingerprint(k1, a)).toBe(panFingerprint(k1, a));
        expect(panFingerprint(k2, a)).not.toBe(panFingerprint(k1, a));
        if (a !== b) expect(panFingerprint(k1, b)).not.toBe(panFingerprint(k1, a));
        expect(panFingerprint(k1, a)).not.toContain(a.slice(-4) + a.slice(0, 6));
      }),
    );
  });
});

describe('card numbers in free text', () => {
  it('finds a card number written with spaces or hyphens, or glued to other digits', () => {
    expect(containsPan('my card is 4111 1111 1111 1111 thanks')).toBe(true);
    expect(containsPan('4111-1111-1111-1111')).toBe(true);
    expect(containsPan('ref 99378282246310005')).toBe(true);
  });
  it('ignores digit runs that fail Luhn, have no IIN, or a wrong length', () => {
    expect(containsPan('order 4111111111111112')).toBe(false);
    expect(containsPan('call 0049 30 1234567')).toBe(false);
    expect(containsPan('Hauptstraße 12, 10115 Berlin')).toBe(false);
  });
  it('every generated card number is found inside text', () => {
    fc.assert(fc.property(anyCard, fc.string(), (pan, text) => {
      expect(containsPan(`${text.replace(/\d/g, '')} ${pan} x`)).toBe(true);
    }));
  });
});
