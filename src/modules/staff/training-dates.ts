/**
 * Calendar arithmetic for training completions. A completion on day D is valid up to, not
 * including, the same-numbered day N months later (PCI DSS 4.0.1 12.6.3: "at least once every 12
 * months"); when that month is shorter, the last day of the month is used (31 January + 1 month →
 * 28 or 29 February). Dates are UTC calendar dates, `YYYY-MM-DD`.
 */
const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;

export interface CalendarDate {
  readonly year: number;
  readonly month: number;
  readonly day: number;
}

const daysIn = (year: number, month: number) => new Date(Date.UTC(year, month, 0)).getUTCDate();
const pad = (n: number, width: number) => String(n).padStart(width, '0');

/** The date, or undefined when `text` is not a real calendar date in YYYY-MM-DD form. */
export function parseDate(text: string): CalendarDate | undefined {
  const m = DATE.exec(text);
  if (m === null) return undefined;
  const year = Number(m[1]);
  const month = Number(m[2]);
  const day = Number(m[3]);
  if (year < 1970 || month < 1 || month > 12 || day < 1 || day > daysIn(year, month)) return undefined;
  return { year, month, day };
}

export function formatDate(d: CalendarDate): string {
  return `${pad(d.year, 4)}-${pad(d.month, 2)}-${pad(d.day, 2)}`;
}

/** `date` plus `months` calendar months, clamped to the end of a shorter month. */
export function addMonths(date: CalendarDate, months: number): CalendarDate {
  const index = date.year * 12 + (date.month - 1) + months;
  const year = Math.floor(index / 12);
  const month = (index % 12) + 1;
  return { year, month, day: Math.min(date.day, daysIn(year, month)) };
}

/** Today's UTC calendar date. */
export function utcToday(now: Date): string {
  return now.toISOString().slice(0, 10);
}

/** The first day a completion on `completedOn` no longer counts, after `validityMonths`. */
export function expiresOn(completedOn: string, validityMonths: number): string {
  const d = parseDate(completedOn);
  if (d === undefined) throw new Error('completion date is not a YYYY-MM-DD date');
  return formatDate(addMonths(d, validityMonths));
}
