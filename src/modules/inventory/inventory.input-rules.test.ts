import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { fieldWriteSchema, hasControlCharacter, hasInvisibleCharacter } from './fields.ts';
import type { FieldDef } from './load.ts';

/**
 * Property tests of the text rules of the write schemas: which characters are refused in free
 * text and in contact data, wherever in the value they stand, and what stays accepted.
 */
const field = (type: FieldDef['type'], name = 'f'): FieldDef => ({ name, collection: 'c', type, category: 'contact' }) as unknown as FieldDef;
const ruleOf = (result: { success: boolean; error?: { issues: readonly object[] } | undefined }) =>
  result.error?.issues.map((i) => ('params' in i ? (i.params as { rule?: string } | undefined)?.rule : undefined)).find((r) => r !== undefined);

const allowedControl = fc.constantFrom('\t', '\n');
const control = fc.oneof(fc.integer({ min: 0, max: 8 }), fc.integer({ min: 0x0b, max: 0x1f }), fc.integer({ min: 0x7f, max: 0x9f })).map((c) => String.fromCodePoint(c));
const invisible = fc.constantFrom(
  '\u00ad', '\u034f', '\u061c', '\u115f', '\u1160', '\u180e', '\u200b', '\u200c', '\u200d', '\u200e', '\u200f', '\u2028', '\u2029',
  '\u202a', '\u202b', '\u202c', '\u202d', '\u202e', '\u2060', '\u2061', '\u2062', '\u2063', '\u2064', '\u2066', '\u2067', '\u2068',
  '\u2069', '\u3164', '\ufe0f', '\ufeff', '\uffa0', '\u0000', '\u001b',
);
/** Visible text: letters, digits, punctuation and spaces of any script, tab and newline, no controls or format characters. */
const visible = fc.string({ unit: 'grapheme', maxLength: 30 }).map((s) => s.replace(/[\p{Cc}\p{Cf}\p{Zl}\p{Zp}\p{M}\u115f\u1160\u3164\uffa0\u17b4\u17b5\u180b-\u180f]/gu, ''));
const insert = (s: string, c: string, at: number) => s.slice(0, at % (s.length + 1)) + c + s.slice(at % (s.length + 1));

describe('text rules', () => {
  const text = fieldWriteSchema(field('string'), {});
  const email = fieldWriteSchema(field('email'), {});
  const phone = fieldWriteSchema(field('phone'), {});

  it('free text with a control character other than tab and newline is refused wherever it stands', () => {
    fc.assert(
      fc.property(visible, control, fc.nat(), (s, c, at) => {
        const value = insert(s, c, at);
        expect(hasControlCharacter(value)).toBe(true);
        expect(ruleOf(text.safeParse(value))).toBe('control_character');
      }),
    );
  });

  it('free text without such a character passes the rule, tab and newline included', () => {
    fc.assert(
      fc.property(visible, allowedControl, fc.nat(), (s, c, at) => {
        const value = `x${insert(s, c, at)}`;
        expect(hasControlCharacter(value)).toBe(false);
        expect(text.safeParse(value).success).toBe(true);
      }),
    );
  });

  it('an email or phone with an invisible or format character is refused wherever it stands', () => {
    fc.assert(
      fc.property(fc.emailAddress(), invisible, fc.nat(), (address, c, at) => {
        const value = insert(address, c, at);
        expect(hasInvisibleCharacter(value)).toBe(true);
        expect(ruleOf(email.safeParse(value))).toBe('invisible_character');
      }),
    );
    fc.assert(
      fc.property(fc.stringMatching(/^\+49 15[0-9] [0-9]{4} [0-9]{4}$/), invisible, fc.nat(), (number, c, at) => {
        expect(ruleOf(phone.safeParse(insert(number, c, at)))).toBe('invisible_character');
      }),
    );
  });

  it('an email without one is not refused for invisibility', () => {
    fc.assert(
      fc.property(fc.emailAddress(), (address) => {
        expect(hasInvisibleCharacter(address)).toBe(false);
        expect(email.safeParse(address).success).toBe(true);
      }),
    );
  });

  it('a decimal as a JSON number is refused; the same amount as a string is kept digit for digit', () => {
    const decimal = fieldWriteSchema(field('decimal'), {});
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 10_000_000 }), fc.integer({ min: 0, max: 99 }), (units, cents) => {
        const amount = `${units}.${String(cents).padStart(2, '0')}`;
        expect(ruleOf(decimal.safeParse(Number(amount)))).toBe('decimal_as_number');
        expect(decimal.safeParse(amount)).toMatchObject({ success: true, data: amount });
      }),
    );
  });

  it('a date of birth is accepted from 130 years back to today, refused outside', () => {
    const now = new Date('2030-02-28T23:00:00Z');
    const dob = fieldWriteSchema(field('date', 'date_of_birth'), { now: () => now });
    const day = (offsetDays: number) => new Date(Date.UTC(2030, 1, 28) + offsetDays * 86_400_000).toISOString().slice(0, 10);
    fc.assert(
      fc.property(fc.integer({ min: -40_000, max: 60_000 }), (offset) => {
        const value = day(offset);
        const inRange = value <= '2030-03-01' && value >= '1900-02-27';
        expect(dob.safeParse(value).success, value).toBe(inRange);
        if (!inRange) expect(ruleOf(dob.safeParse(value))).toBe('date_of_birth_range');
      }),
    );
    // Another date field is not a date of birth.
    expect(fieldWriteSchema(field('date', 'delivered_on'), { now: () => now }).safeParse('2031-01-01').success).toBe(true);
  });
});
