import type { CommandRun } from '../main.ts';
import { parse } from '../main.ts';
import { UsageError } from '../io.ts';

/**
 * `custos cards sweep`: removes cards past their expiry plus CUSTOS_CARDS_EXPIRY_GRACE_DAYS, and
 * card sessions (publishable keys) that expired more than a day ago.
 * `custos cards report --quarter 2026Q4 [--json]`: what was removed that quarter, by cause, and
 * how many expired cards are still stored (PCI DSS 3.2.1: checked at least every three months).
 */
export const CARDS_USAGE = `  cards sweep                                   remove cards past their expiry plus the grace period, and old card sessions
  cards report --quarter YYYYQn [--json]        cards removed in a quarter, by cause; exit 1 if expired cards remain`;

export const cardsCommand: CommandRun = async (runtime, args, io) => {
  const [sub, ...rest] = args;
  if (sub === 'sweep') {
    const removed = await runtime.cards.sweepExpired(runtime.config.cardsExpiryGraceDays);
    const sessions = await runtime.cardSessions.sweep();
    io.out(`removed ${removed} expired cards and ${sessions} card sessions`);
    return 0;
  }
  if (sub === 'report') {
    const { values } = parse(rest, { quarter: { type: 'string' }, json: { type: 'boolean' } });
    const quarter = values.quarter === undefined ? undefined : String(values.quarter);
    if (quarter === undefined || !/^\d{4}Q[1-4]$/.test(quarter)) throw new UsageError('needs --quarter YYYYQn, such as 2026Q4');
    const report = await runtime.cards.retentionReport(quarter);
    await runtime.audit.append({ actor: 'cli', action: 'cards.retention_report', recordId: quarter, fields: [], outcome: 'success' });
    if (values.json === true) io.out(JSON.stringify(report, null, 2));
    else
      io.out(
        `${report.quarter} (${report.from.slice(0, 10)} to ${report.to.slice(0, 10)}): removed ${report.removed.expiry} at expiry, ${report.removed.delete} deleted; ${report.stored} stored, ${report.overdue} past expiry and grace`,
      );
    return report.overdue === 0 ? 0 : 1;
  }
  throw new UsageError('cards sweep|report');
};
