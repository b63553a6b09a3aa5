/**
 * What every posture check answers, and how a run's answers become one report. The JSON shape is a
 * contract for CI (`custos doctor --json`, GET /v1/security/posture):
 * `{ "status": "pass|warn|fail", "checks": [{ "id", "status", "summary", "fix" }] }`, the checks in
 * a fixed order, `fix` null on a pass.
 */
export type CheckStatus = 'pass' | 'warn' | 'fail';

export interface CheckResult {
  /** Stable, dotted: `tls.config`, `audit.verify`, … (README "Posture: custos doctor" lists them). */
  readonly id: string;
  readonly status: CheckStatus;
  /** One line: what was found. Ids and counts, never personal data or secret values. */
  readonly summary: string;
  /** One line: how to fix it; null on a pass. */
  readonly fix: string | null;
}

/** A check's answer before the run's mode is applied. */
export interface Finding extends CheckResult {
  /**
   * A failure that `--ci` (or CI=true) reports as a warning: dependency advisories and what the
   * embedded defaults bring (the self-signed certificate), which a fresh CI server always has.
   */
  readonly ciWarn?: boolean;
}

export interface PostureReport {
  readonly status: CheckStatus;
  readonly checks: readonly CheckResult[];
}

const RANK: Record<CheckStatus, number> = { pass: 0, warn: 1, fail: 2 };

export const worst = (statuses: readonly CheckStatus[]): CheckStatus => statuses.reduce<CheckStatus>((a, b) => (RANK[b] > RANK[a] ? b : a), 'pass');

export const pass = (id: string, summary: string): Finding => ({ id, status: 'pass', summary, fix: null });
export const warn = (id: string, summary: string, fix: string): Finding => ({ id, status: 'warn', summary, fix });
export const failed = (id: string, summary: string, fix: string, options: { ciWarn?: boolean } = {}): Finding => ({
  id,
  status: 'fail',
  summary,
  fix,
  ...(options.ciWarn === true ? { ciWarn: true } : {}),
});

/** The report of a run: in CI mode the failures marked `ciWarn` count as warnings. */
export function toReport(findings: readonly Finding[], options: { ci: boolean }): PostureReport {
  const checks = findings.map(({ id, status, summary, fix, ciWarn }): CheckResult => ({
    id,
    status: options.ci && ciWarn === true && status === 'fail' ? 'warn' : status,
    summary,
    fix,
  }));
  return { status: worst(checks.map((c) => c.status)), checks };
}

/** "a, b, c and 4 more": ids in a one-line summary. */
export function some(items: readonly string[], shown = 3): string {
  if (items.length <= shown) return items.join(', ');
  return `${items.slice(0, shown).join(', ')} and ${items.length - shown} more`;
}

/** Problems joined into one line: the first three, then how many more. */
export function lines(problems: readonly string[], shown = 3): string {
  return problems.slice(0, shown).join('; ') + (problems.length > shown ? ` (and ${problems.length - shown} more)` : '');
}

export const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/**
 * A check that threw: reported as a failure naming the error's class and code, never its stack
 * or values (a database error may quote a row).
 */
export function crashed(id: string, error: unknown): Finding {
  const name = error instanceof Error ? error.name : 'Error';
  const code = (error as { code?: unknown } | null)?.code;
  return failed(id, `the check could not run (${name}${typeof code === 'string' ? ` ${code}` : ''})`, 'run the check again; the error is logged (custos doctor: on standard error; the server: in its log)');
}

export const DAY_MS = 86_400_000;
export const daysBetween = (from: Date | string, to: Date) => Math.floor((to.getTime() - new Date(from).getTime()) / DAY_MS);
