import type { Runtime } from '../../runtime.ts';
import { DUE_SOON_DAYS } from '../rights/service.ts';
import { failed, lines, pass, plural, some, warn, type Finding } from './finding.ts';

/**
 * Deadlines the law sets and a sweep or a person must meet.
 * - `retention.overdue`: held records and data-subject request records that the retention sweep
 *   (hourly in every server) should have removed a day ago and has not, and cards past their expiry
 *   plus CUSTOS_CARDS_EXPIRY_GRACE_DAYS that `custos cards sweep` has not removed. A day late warns
 *   (the sweep does not run or fails); 30 days late fails (GDPR Art. 5(1)(e) storage limitation;
 *   PCI DSS 4.0.1 3.2.1).
 * - `rights.deadlines`: open data-subject requests past their deadline fail, those due within 7
 *   days warn (GDPR Art. 12(3); CCPA 45 days), as do CCPA requests not acknowledged in time.
 */
export const RETENTION_LATE_DAYS = 1;
export const RETENTION_FAIL_DAYS = 30;

function quarterOf(now: Date): string {
  return `${now.getUTCFullYear()}Q${Math.floor(now.getUTCMonth() / 3) + 1}`;
}

export async function checkRetention(runtime: Pick<Runtime, 'retention' | 'cards' | 'clock'>): Promise<Finding> {
  const id = 'retention.overdue';
  const late = await runtime.retention.overdue(RETENTION_LATE_DAYS);
  const veryLate = await runtime.retention.overdue(RETENTION_FAIL_DAYS);
  const cards = (await runtime.cards.retentionReport(quarterOf(runtime.clock.now()))).overdue;
  const problems: string[] = [];
  if (late.held_records > 0) problems.push(`${plural(late.held_records, 'held record')} past the end of their legal hold`);
  if (late.rights_requests > 0) problems.push(`${plural(late.rights_requests, 'data-subject request record')} closed more than 24 months ago`);
  if (cards > 0) problems.push(`${plural(cards, 'card')} past expiry plus the grace period`);
  const fix = `run custos retention run now and check the server log for "retention sweep failed"; ${cards > 0 ? 'run custos cards sweep (schedule it daily); ' : ''}every server runs the retention sweep hourly`;
  if (veryLate.held_records + veryLate.rights_requests > 0) return failed(id, `still stored more than ${RETENTION_FAIL_DAYS} days late: ${lines(problems)}`, fix);
  if (problems.length > 0) return warn(id, `still stored after their retention ended: ${lines(problems)}`, fix);
  return pass(id, 'nothing is kept past its retention: held records, request records and expired cards are swept on time');
}

export async function checkRightsDeadlines(runtime: Pick<Runtime, 'rights' | 'clock'>): Promise<Finding> {
  const id = 'rights.deadlines';
  const now = runtime.clock.now();
  const today = now.toISOString().slice(0, 10);
  const open = await runtime.rights.list({});
  const overdue = open.filter((r) => Date.parse(r.due_at) < now.getTime());
  const soon = open.filter((r) => !overdue.includes(r) && r.due_soon);
  const unacknowledged = open.filter((r) => r.state === 'received' && r.acknowledge_by !== null && r.acknowledge_by < today);
  const fix = 'work them in the console or with GET /v1/rights/requests; a request can be extended once, with reasons, before its first deadline (GDPR Art. 12(3)); CCPA requests are acknowledged within 10 business days';
  if (overdue.length > 0)
    return failed(id, `${plural(overdue.length, 'data-subject request')} past the deadline: ${some(overdue.map((r) => `${r.id} (due ${r.due_on})`))}`, fix);
  const problems: string[] = [];
  if (soon.length > 0) problems.push(`${plural(soon.length, 'request')} due within ${DUE_SOON_DAYS} days: ${some(soon.map((r) => `${r.id} (due ${r.due_on})`))}`);
  if (unacknowledged.length > 0) problems.push(`${plural(unacknowledged.length, 'CCPA request')} not acknowledged in time: ${some(unacknowledged.map((r) => r.id))}`);
  if (problems.length > 0) return warn(id, lines(problems), fix);
  return pass(id, open.length === 0 ? 'no open data-subject request' : `${plural(open.length, 'open data-subject request')}, none due within ${DUE_SOON_DAYS} days`);
}
