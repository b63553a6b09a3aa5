/**
 * The GDPR Art. 33(1) clock: the supervisory authority is notified without undue delay and, where
 * feasible, within 72 hours of the controller becoming aware of the breach; a later notification
 * states the reasons for the delay. The clock runs from `aware_at` and stops when the authority is
 * notified (status `notified`) or the incident is closed without notification (a documented
 * decision that the breach is unlikely to result in a risk, Art. 33(1) and 33(5)).
 */
export const NOTIFY_WITHIN_HOURS = 72;

/**
 * Reminders, in hours after `aware_at`: 48, 24 and 6 hours left, and the deadline itself. Each
 * goes once per incident to the members holding `incidents.manage`, while the clock runs.
 */
export const REMINDER_HOURS = [24, 48, 66, 72] as const;

const HOUR = 3_600_000;

export function deadlineOf(awareAt: Date): Date {
  return new Date(awareAt.getTime() + NOTIFY_WITHIN_HOURS * HOUR);
}

/** Where the clock stands: running, overdue (running past the deadline), or stopped by a notification in time, late, or a closure without one. */
export type ClockState = 'running' | 'overdue' | 'notified_in_time' | 'notified_late' | 'closed_without_notification';

export interface ClockView {
  readonly aware_at: string;
  readonly deadline_at: string;
  readonly state: ClockState;
  /** Seconds to the deadline while the clock runs (negative once overdue); null once stopped. */
  readonly remaining_seconds: number | null;
  readonly notified_at: string | null;
}

export function clockOf(row: { aware_at: string; deadline_at: string; notified_at: string | null; closed_at: string | null; status: string }, now: Date): ClockView {
  const deadline = Date.parse(row.deadline_at);
  const base = { aware_at: row.aware_at, deadline_at: row.deadline_at, notified_at: row.notified_at };
  if (row.notified_at !== null) return { ...base, state: Date.parse(row.notified_at) <= deadline ? 'notified_in_time' : 'notified_late', remaining_seconds: null };
  if (row.status === 'closed') return { ...base, state: 'closed_without_notification', remaining_seconds: null };
  const remaining = Math.floor((deadline - now.getTime()) / 1000);
  return { ...base, state: now.getTime() <= deadline ? 'running' : 'overdue', remaining_seconds: remaining };
}

/** The reminder thresholds that have passed at `now` for a clock that started at `awareAt`. */
export function remindersDue(awareAt: Date, now: Date): number[] {
  return REMINDER_HOURS.filter((h) => awareAt.getTime() + h * HOUR <= now.getTime());
}

/** The words of a reminder at `hours` after awareness. */
export function reminderWords(hours: number): string {
  const left = NOTIFY_WITHIN_HOURS - hours;
  return left > 0 ? `${left} hours left` : 'the 72-hour deadline is reached';
}
