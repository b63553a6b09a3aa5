import { execFile } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { failed, pass, some, warn, type Finding } from './finding.ts';

/**
 * Dependency advisories: `npm audit --json --omit=dev` in Custos's own folder (its
 * package-lock.json), bounded by a short timeout. Only the packages that run in production count;
 * development tools never reach a server. When the advisory database cannot be reached (offline,
 * a proxy, a registry mirror without the audit endpoint) the check says so and warns: nothing was
 * checked. High and critical advisories fail; `--ci` reports them as warnings.
 */
export const PROJECT_ROOT = fileURLToPath(new URL('../../../', import.meta.url));
export const ADVISORY_TIMEOUT_MS = 15_000;

const ID = 'dependencies.advisories';
const FIX_UNCHECKED = 'run custos doctor where the npm registry is reachable, or `npm audit --omit=dev` in the Custos folder by hand';
const FIX_ADVISORIES = 'run `npm audit --omit=dev` in the Custos folder to read the advisories, upgrade the packages it names (`npm audit fix`), run the tests, restart';

interface AuditJson {
  metadata?: { vulnerabilities?: Partial<Record<'info' | 'low' | 'moderate' | 'high' | 'critical', number>> };
  vulnerabilities?: Record<string, { severity?: string }>;
  error?: { code?: string; summary?: string };
  message?: string;
  statusCode?: number;
}

export interface AdvisoryOptions {
  /** The environment npm runs with (npm_config_registry, proxies, PATH). */
  readonly env: Record<string, string | undefined>;
  readonly cwd?: string;
  readonly timeoutMs?: number;
}

/** Why `npm audit` gave no counts, in a few words (a status, an error code or npm's summary; never a URL). */
function noAnswer(json: AuditJson): string {
  if (json.error?.code === 'ENOLOCK') return 'there is no package-lock.json in the Custos folder: dependency advisories not checked';
  if (typeof json.statusCode === 'number') return `the advisory database could not be reached (the registry answered ${json.statusCode}): dependency advisories not checked`;
  const code = /\b(E[A-Z]{3,}|EAI_AGAIN)\b/.exec(json.message ?? '')?.[1];
  if (code !== undefined) return `the advisory database could not be reached (npm reported ${code}): dependency advisories not checked`;
  const summary = (json.error?.summary ?? '').replace(/https?:\/\/\S+/g, '<url>').slice(0, 100);
  return `npm audit failed${summary === '' ? '' : ` (${summary})`}: dependency advisories not checked`;
}

export async function checkAdvisories(options: AdvisoryOptions): Promise<Finding> {
  const timeout = options.timeoutMs ?? ADVISORY_TIMEOUT_MS;
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(options.env)) if (v !== undefined) env[k] = v;
  const run = await new Promise<{ stdout: string; code: unknown; timedOut: boolean }>((resolve) => {
    execFile(
      'npm',
      ['audit', '--json', '--omit=dev', '--no-update-notifier', '--no-fund', '--fetch-retries=0'],
      { cwd: options.cwd ?? PROJECT_ROOT, env, timeout, killSignal: 'SIGKILL', maxBuffer: 32 * 1024 * 1024, windowsHide: true },
      (error, stdout) => resolve({ stdout, code: error?.code, timedOut: error?.killed === true }),
    );
  });
  if (run.timedOut) return warn(ID, `npm audit gave no answer within ${Math.round(timeout / 1000)} s: dependency advisories not checked`, FIX_UNCHECKED);
  if (run.code === 'ENOENT') return warn(ID, 'npm is not installed where custos doctor runs: dependency advisories not checked', FIX_UNCHECKED);
  let json: AuditJson;
  try {
    json = JSON.parse(run.stdout) as AuditJson;
  } catch {
    return warn(ID, 'npm audit gave no readable answer: dependency advisories not checked', FIX_UNCHECKED);
  }
  const counts = json.metadata?.vulnerabilities;
  if (counts === undefined) return warn(ID, noAnswer(json), FIX_UNCHECKED);
  const n = (s: keyof typeof counts) => counts[s] ?? 0;
  const bySeverity = (wanted: readonly string[]) =>
    Object.entries(json.vulnerabilities ?? {})
      .filter(([, v]) => wanted.includes(v.severity ?? ''))
      .map(([name]) => name)
      .sort();
  const serious = n('critical') + n('high');
  const minor = n('moderate') + n('low');
  const tally = (['critical', 'high', 'moderate', 'low'] as const)
    .filter((s) => n(s) > 0)
    .map((s) => `${n(s)} ${s}`)
    .join(', ');
  if (serious > 0)
    return failed(ID, `advisories in production dependencies: ${tally} (${some(bySeverity(['critical', 'high']))})`, FIX_ADVISORIES, { ciWarn: true });
  if (minor > 0) return warn(ID, `advisories in production dependencies: ${tally} (${some(bySeverity(['moderate', 'low']))})`, FIX_ADVISORIES);
  return pass(ID, 'npm audit: no advisories in production dependencies');
}
