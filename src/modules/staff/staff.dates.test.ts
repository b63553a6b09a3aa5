import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { addMonths, expiresOn, formatDate, parseDate } from './training-dates.ts';

const date = fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2999-12-31T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString().slice(0, 10));

describe('training date arithmetic', () => {
  it('parses exactly the real calendar dates and formats them back', () => {
    fc.assert(fc.property(date, (d) => formatDate(parseDate(d)!) === d));
    for (const bad of ['2025-02-29', '2024-02-30', '2025-13-01', '2025-00-10', '2025-04-31', '25-01-01', '2025-1-1', '2025-01-01T00:00', ''])
      expect(parseDate(bad)).toBeUndefined();
    expect(parseDate('2024-02-29')).toEqual({ year: 2024, month: 2, day: 29 });
  });

  it('adds months onto real dates, keeping the day or clamping to the end of a shorter month', () => {
    fc.assert(
      fc.property(date, fc.integer({ min: 0, max: 240 }), (d, n) => {
        const start = parseDate(d)!;
        const end = addMonths(start, n);
        expect(parseDate(formatDate(end))).toEqual(end);
        expect(end.year * 12 + end.month - (start.year * 12 + start.month)).toBe(n);
        if (end.day !== start.day) {
          expect(end.day).toBeLessThan(start.day);
          expect(parseDate(formatDate({ ...end, day: end.day + 1 }))).toBeUndefined();
        }
        expect(formatDate(end) >= d).toBe(true);
      }),
    );
  });

  it('ends a twelve-month completion on the same day next year', () => {
    expect(expiresOn('2025-03-02', 12)).toBe('2026-03-02');
    expect(expiresOn('2024-02-29', 12)).toBe('2025-02-28');
    expect(expiresOn('2025-01-31', 1)).toBe('2025-02-28');
    expect(expiresOn('2025-12-15', 1)).toBe('2026-01-15');
  });
});
