/**
 * Deadlines of data-subject requests, as pure calendar arithmetic over UTC calendar dates
 * (`YYYY-MM-DD`). No clock and no storage: the service passes the dates in.
 *
 * GDPR (Art. 12(3)): one month from receipt, extendable by two further months. The month is
 * counted as Regulation (EEC, Euratom) No 1182/71 says: the day of receipt is not counted
 * (Art. 3(1)); a period in months ends with the day of the last month that has the same number as
 * the day of receipt, or that month's last day where it has none (Art. 3(2)(c): 31 January → 28 or
 * 29 February); a period ending on a Saturday, Sunday or public holiday ends with the next working
 * day (Art. 3(4)). An extended period counts three months from receipt. Days during which the
 * controller waits for the requester to prove their identity are added to the period (the clock
 * is paused), before moving to a working day.
 *
 * CCPA (Cal. Civ. Code 1798.130(a)(2); CCPA regulations 7021(b)): 45 calendar days from receipt,
 * whatever verification takes; once extendable by 45 more. Requests to know, delete and correct
 * are acknowledged within 10 business days (7021(a)); requests to opt out (here: restriction and
 * objection) are answered within 15 business days (7026(f)). Business days are Monday to Friday,
 * less the configured holidays.
 */

export type Jurisdiction = 'gdpr' | 'ccpa';
export type RequestKind = 'access' | 'portability' | 'rectification' | 'erasure' | 'restriction' | 'objection';
/** What a request kind is called under the CCPA. */
export type CcpaCategory = 'know' | 'delete' | 'correct' | 'opt_out';

export const CCPA_CATEGORY: Readonly<Record<RequestKind, CcpaCategory>> = Object.freeze({
  access: 'know',
  portability: 'know',
  rectification: 'correct',
  erasure: 'delete',
  restriction: 'opt_out',
  objection: 'opt_out',
});

const DATE = /^(\d{4})-(\d{2})-(\d{2})$/;
const DAY_MS = 86_400_000;

/** Days since 1970-01-01 of a `YYYY-MM-DD` date; throws on anything that is not a real date. */
export function dayNumber(date: string): number {
  const m = DATE.exec(date);
  if (m === null) throw new RangeError('not a YYYY-MM-DD date');
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])];
  const t = Date.UTC(year, month - 1, day);
  const back = new Date(t);
  if (back.getUTCFullYear() !== year || back.getUTCMonth() !== month - 1 || back.getUTCDate() !== day) throw new RangeError('not a calendar date');
  return t / DAY_MS;
}

export function dateOf(dayNo: number): string {
  return new Date(dayNo * DAY_MS).toISOString().slice(0, 10);
}

/** The UTC calendar date of an instant. */
export function utcDate(instant: Date): string {
  return instant.toISOString().slice(0, 10);
}

export function addDays(date: string, days: number): string {
  return dateOf(dayNumber(date) + days);
}

/** `date` plus `months` calendar months; the last day of a shorter month where the day is missing. */
export function addMonths(date: string, months: number): string {
  const [year, month, day] = date.split('-').map(Number) as [number, number, number];
  dayNumber(date);
  const index = year * 12 + (month - 1) + months;
  const y = Math.floor(index / 12);
  const m = (index % 12) + 1;
  const last = new Date(Date.UTC(y, m, 0)).getUTCDate();
  return `${String(y).padStart(4, '0')}-${String(m).padStart(2, '0')}-${String(Math.min(day, last)).padStart(2, '0')}`;
}

/** Holidays as a set of `YYYY-MM-DD` dates (validated). */
export type Holidays = ReadonlySet<string>;

export function holidays(dates: Iterable<string>): Holidays {
  const set = new Set<string>();
  for (const d of dates) {
    dayNumber(d);
    set.add(d);
  }
  return set;
}

export function isWorkingDay(date: string, off: Holidays): boolean {
  const weekday = new Date(dayNumber(date) * DAY_MS).getUTCDay();
  return weekday !== 0 && weekday !== 6 && !off.has(date);
}

/** The date itself when it is a working day, else the next working day (Reg. 1182/71 Art. 3(4)). */
export function nextWorkingDay(date: string, off: Holidays): string {
  let d = date;
  while (!isWorkingDay(d, off)) d = addDays(d, 1);
  return d;
}

/** The `n`-th working day after `date` (the day itself not counted). */
export function addBusinessDays(date: string, n: number, off: Holidays): string {
  let d = date;
  for (let left = n; left > 0; ) {
    d = addDays(d, 1);
    if (isWorkingDay(d, off)) left--;
  }
  return d;
}

export interface DeadlineInput {
  readonly jurisdiction: Jurisdiction;
  readonly kind: RequestKind;
  /** Date of receipt (UTC). */
  readonly receivedOn: string;
  readonly extended: boolean;
  /** Whole calendar days the GDPR clock stood still waiting for identity verification. */
  readonly pausedDays: number;
  readonly holidays: Holidays;
}

export interface Deadline {
  /** The last day to answer (inclusive). */
  readonly dueOn: string;
  /** The last day to acknowledge receipt, where the law asks for one (CCPA). */
  readonly acknowledgeBy: string | undefined;
}

/** The deadline of one request (see the module comment for the rules). */
export function deadline(input: DeadlineInput): Deadline {
  if (!Number.isInteger(input.pausedDays) || input.pausedDays < 0) throw new RangeError('pausedDays must be a whole number ≥ 0');
  if (input.jurisdiction === 'gdpr') {
    const end = addDays(addMonths(input.receivedOn, input.extended ? 3 : 1), input.pausedDays);
    return { dueOn: nextWorkingDay(end, input.holidays), acknowledgeBy: undefined };
  }
  const category = CCPA_CATEGORY[input.kind];
  if (category === 'opt_out') {
    const due = addBusinessDays(input.receivedOn, 15, input.holidays);
    return { dueOn: due, acknowledgeBy: due };
  }
  return {
    dueOn: addDays(input.receivedOn, input.extended ? 90 : 45),
    acknowledgeBy: addBusinessDays(input.receivedOn, 10, input.holidays),
  };
}

/** Whole calendar days from one date to a later one (0 when `to` is not later). */
export function daysBetween(from: string, to: string): number {
  return Math.max(0, dayNumber(to) - dayNumber(from));
}

/** The instant a due date ends: the last millisecond of that UTC day. */
export function endOfDay(date: string): Date {
  return new Date((dayNumber(date) + 1) * DAY_MS - 1);
}
