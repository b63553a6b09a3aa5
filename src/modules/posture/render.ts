import type { PostureReport } from './finding.ts';

/**
 * The human form of a report: one line per check (status, id, summary), the fix indented under
 * each warning and failure, and a last line with the totals.
 */
export function renderText(report: PostureReport): string[] {
  const width = Math.max(...report.checks.map((c) => c.id.length));
  const out: string[] = [];
  for (const c of report.checks) {
    out.push(`${c.status.toUpperCase().padEnd(4)}  ${c.id.padEnd(width)}  ${c.summary}`);
    if (c.fix !== null) out.push(`${' '.repeat(width + 8)}fix: ${c.fix}`);
  }
  const count = (s: string) => report.checks.filter((c) => c.status === s).length;
  out.push('');
  out.push(`custos doctor: ${report.status} (${count('fail')} failed, ${count('warn')} warnings, ${count('pass')} passed)`);
  return out;
}
