import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  addDays,
  addMonths,
  dateOf,
  dayNumber,
  deadline,
  holidays,
  isWorkingDay,
  type DeadlineInput,
  type Holidays,
  type RequestKind,
} from './deadlines.ts';

const none = holidays([]);
const gdpr = (receivedOn: string, more: Partial<DeadlineInput> = {}) =>
  deadline({ jurisdiction: 'gdpr', kind: 'access', receivedOn, extended: false, pausedDays: 0, holidays: none, ...more });
const ccpa = (receivedOn: string, kind: RequestKind, more: Partial<DeadlineInput> = {}) =>
  deadline({ jurisdiction: 'ccpa', kind, receivedOn, extended: false, pausedDays: 0, holidays: none, ...more });

describe('GDPR one month, counted by Regulation 1182/71 (worked examples)', () => {
  it('ends on the same-numbered day of the next month', () => expect(gdpr('2027-03-15').dueOn).toBe('2027-04-15'));
  it('31 January ends on 29 February in a leap year', () => expect(gdpr('2028-01-31').dueOn).toBe('2028-02-29'));
  it('31 January 2027 → 28 February, a Sunday → Monday 1 March', () => expect(gdpr('2027-01-31').dueOn).toBe('2027-03-01'));
  it('a period ending on a Sunday ends on the Monday', () => expect(gdpr('2027-06-18').dueOn).toBe('2027-07-19'));
  it('a period ending on a holiday ends on the next working day', () => {
    expect(gdpr('2027-05-03').dueOn).toBe('2027-06-03');
    expect(gdpr('2027-05-03', { holidays: holidays(['2027-06-03']) }).dueOn).toBe('2027-06-04');
  });
  it('31 December ends on 31 January', () => expect(gdpr('2027-12-31').dueOn).toBe('2028-01-31'));
  it('extended by two months counts three months from receipt', () => expect(gdpr('2027-01-31', { extended: true }).dueOn).toBe('2027-04-30'));
  it('ten days waiting for identity move the end by ten days, then to a working day', () =>
    expect(gdpr('2027-03-15', { pausedDays: 10 }).dueOn).toBe('2027-04-26'));
  it('no acknowledgement deadline', () => expect(gdpr('2027-03-15').acknowledgeBy).toBeUndefined());
});

describe('CCPA (worked examples)', () => {
  it('45 calendar days, whatever the weekday', () => expect(ccpa('2027-03-01', 'erasure').dueOn).toBe('2027-04-15'));
  it('extended: 90 days', () => expect(ccpa('2027-03-01', 'access', { extended: true }).dueOn).toBe('2027-05-30'));
  it('verification does not stop the clock', () => expect(ccpa('2027-03-01', 'access', { pausedDays: 20 }).dueOn).toBe('2027-04-15'));
  it('acknowledged within 10 business days', () => {
    expect(ccpa('2027-03-01', 'rectification').acknowledgeBy).toBe('2027-03-15');
    expect(ccpa('2027-03-01', 'rectification', { holidays: holidays(['2027-03-08']) }).acknowledgeBy).toBe('2027-03-16');
  });
  it('opt-outs (restriction, objection) answered within 15 business days', () => {
    expect(ccpa('2027-03-01', 'objection').dueOn).toBe('2027-03-22');
    expect(ccpa('2027-03-01', 'restriction').acknowledgeBy).toBe('2027-03-22');
  });
});

describe('calendar helpers refuse what is not a date', () => {
  it.each(['2027-02-29', '2027-13-01', '27-01-01', '2027-1-1', ''])('%s', (bad) => expect(() => dayNumber(bad)).toThrow(RangeError));
  it('a holiday list with a bad date is refused', () => expect(() => holidays(['2027-02-30'])).toThrow(RangeError));
  it('a negative pause is refused', () => expect(() => gdpr('2027-03-15', { pausedDays: -1 })).toThrow(RangeError));
});

const dates = fc.integer({ min: dayNumber('1990-01-01'), max: dayNumber('2090-12-31') }).map(dateOf);
const holidaySets = fc.array(dates, { maxLength: 40 }).map((d) => holidays(d));
const kinds = fc.constantFrom<RequestKind>('access', 'portability', 'rectification', 'erasure', 'restriction', 'objection');
const between = (from: string, to: string, off: Holidays) => {
  const out: string[] = [];
  for (let d = addDays(from, 1); d <= to; d = addDays(d, 1)) if (isWorkingDay(d, off)) out.push(d);
  return out;
};

describe('deadline properties', () => {
  it('a GDPR deadline is a working day, no earlier than the month end, with only days off in between', () =>
    fc.assert(
      fc.property(dates, holidaySets, fc.boolean(), fc.integer({ min: 0, max: 60 }), (receivedOn, off, extended, pausedDays) => {
        const { dueOn } = gdpr(receivedOn, { holidays: off, extended, pausedDays });
        const end = addDays(addMonths(receivedOn, extended ? 3 : 1), pausedDays);
        expect(isWorkingDay(dueOn, off)).toBe(true);
        expect(dueOn >= end).toBe(true);
        expect(between(addDays(end, -1), addDays(dueOn, -1), off)).toEqual([]);
      }),
    ));

  it('a later receipt never gives an earlier deadline; extending or pausing never shortens it', () =>
    fc.assert(
      fc.property(dates, fc.integer({ min: 1, max: 400 }), holidaySets, kinds, fc.constantFrom('gdpr', 'ccpa' as const), (d, gap, off, kind, jurisdiction) => {
        const base = { jurisdiction, kind, extended: false, pausedDays: 0, holidays: off } as const;
        const first = deadline({ ...base, receivedOn: d }).dueOn;
        expect(deadline({ ...base, receivedOn: addDays(d, gap) }).dueOn >= first).toBe(true);
        expect(deadline({ ...base, receivedOn: d, extended: true }).dueOn >= first).toBe(true);
        expect(deadline({ ...base, receivedOn: d, pausedDays: gap }).dueOn >= first).toBe(true);
      }),
    ));

  it('the one-month period keeps the day of the month when the next month has it', () =>
    fc.assert(
      fc.property(dates, fc.integer({ min: -1200, max: 1200 }), (d, months) => {
        const shifted = addMonths(d, months);
        const day = Number(d.slice(8));
        if (day <= 28) expect(shifted.slice(8)).toBe(d.slice(8));
        else expect(Number(shifted.slice(8))).toBeLessThanOrEqual(day);
      }),
    ));

  it('a CCPA acknowledgement falls on exactly the 10th working day after receipt', () =>
    fc.assert(
      fc.property(dates, holidaySets, fc.constantFrom<RequestKind>('access', 'portability', 'rectification', 'erasure'), (receivedOn, off, kind) => {
        const { acknowledgeBy, dueOn } = ccpa(receivedOn, kind, { holidays: off });
        expect(acknowledgeBy).toBeDefined();
        const working = between(receivedOn, acknowledgeBy!, off);
        expect(working).toHaveLength(10);
        expect(working.at(-1)).toBe(acknowledgeBy);
        expect(dayNumber(dueOn) - dayNumber(receivedOn)).toBe(45);
      }),
    ));
});
