import type { Config } from '../../config/config.ts';
import type { Runtime } from '../../runtime.ts';
import { CLI_OPERATOR } from '../staff/ports.ts';
import { checkApiKeys, checkStaffMfa, checkStaffSessions, checkTraining } from './access.ts';
import { checkAdvisories, type AdvisoryOptions } from './advisories.ts';
import { checkAudit, type AuditBreak } from './audit-check.ts';
import { checkRetention, checkRightsDeadlines } from './deadlines.ts';
import { checkFilePermissions, checkRootLocation } from './files.ts';
import { crashed, failed, toReport, warn, type Finding, type PostureReport } from './finding.ts';
import { checkKeyAge } from './key-age.ts';
import { checkNodeRuntime } from './node-eol.ts';
import { checkSecrets } from './secrets.ts';
import { checkTlsConfig } from './tls-config.ts';
import { probeTls } from './tls-probe.ts';

/**
 * One posture run: every check in a fixed order, each answering pass, warn or fail with a one-line
 * fix. What needs no database comes first (TLS, files, secrets) so that it is reported even when
 * the vault cannot be opened — a keyring readable by others stops the vault from opening, and
 * that is exactly what must be reported.
 */
export type PostureRuntime = Pick<
  Runtime,
  'config' | 'store' | 'keys' | 'ring' | 'rootKeys' | 'clock' | 'consent' | 'staff' | 'identity' | 'apiKeys' | 'retention' | 'cards' | 'rights'
>;

export interface PostureOptions {
  readonly config: Config;
  readonly now: Date;
  /** `--ci` or CI=true: advisories and the embedded defaults' failures count as warnings. */
  readonly ci: boolean;
  /** The working directory (a `.env` there may hold the root key). */
  readonly cwd: string;
  /** The vault, or why it could not be opened; undefined: the database checks are not run. */
  readonly vault: { readonly runtime: PostureRuntime } | { readonly error: unknown };
  /** Probe this server's TLS (`--url`). */
  readonly url?: URL | undefined;
  /** Extra trusted CA certificates for the probe (PEM). */
  readonly ca?: string | undefined;
  /**
   * Run `npm audit`; 'offline': reported as not checked (`custos doctor --offline`); undefined: left
   * out (the server makes no outbound requests).
   */
  readonly advisories?: AdvisoryOptions | 'offline' | undefined;
  readonly nodeVersion?: string;
  /** API keys planted as decoys (honeytokens): never used on purpose, so never "unused". */
  readonly isDecoyApiKey?: (id: string) => boolean;
  readonly progress?: (done: number, total: number) => void;
  /** The audit log was found altered (for detection's audit_tamper alert: an `audit.verify_failed` security event). */
  readonly onAuditBroken?: (check: AuditBreak, reason: string) => void;
  /** A check that threw (reported as a failure of that check). */
  readonly onError?: (checkId: string, error: unknown) => void;
}

export async function runPosture(options: PostureOptions): Promise<PostureReport> {
  const findings: Finding[] = [];
  const run = async (id: string, check: () => Finding | Finding[] | Promise<Finding | Finding[]>) => {
    try {
      const found = await check();
      findings.push(...(Array.isArray(found) ? found : [found]));
    } catch (error) {
      options.onError?.(id, error);
      findings.push(crashed(id, error));
    }
  };
  const { config, now } = options;
  await run('tls.config', () => checkTlsConfig(config, { now, probing: options.url !== undefined }));
  if (options.url !== undefined) {
    const url = options.url;
    await run('tls.probe', () => probeTls(url, { now, ca: options.ca }));
  }
  await run('files.permissions', () => checkFilePermissions(config));
  await run('keys.root-location', () => checkRootLocation(config, options.cwd));
  await run('secrets.weak', () => checkSecrets(config));
  if ('error' in options.vault) {
    const error = options.vault.error;
    findings.push(
      failed(
        'database',
        `the database and keys could not be opened: ${error instanceof Error ? error.message.split('\n').join(' ') : String(error)}; the checks that read them did not run`,
        'fix what the message names (the findings above help), then run custos doctor again',
      ),
    );
  } else {
    const runtime = options.vault.runtime;
    await run('keys.age', () => checkKeyAge(runtime));
    await run('audit.verify', () => checkAudit(runtime, { progress: options.progress, onBroken: options.onAuditBroken }));
    const members = await runtime.staff.members.list(CLI_OPERATOR).catch((error: unknown) => error);
    const withMembers = (id: string, check: (m: Awaited<ReturnType<typeof runtime.staff.members.list>>) => Promise<Finding>) =>
      run(id, () => {
        if (!Array.isArray(members)) throw members;
        return check(members);
      });
    await withMembers('staff.mfa', (m) => checkStaffMfa(runtime, m));
    await withMembers('staff.sessions', (m) => checkStaffSessions(runtime, m));
    await withMembers('staff.training', (m) => checkTraining(runtime, m));
    await run('apikeys.unused', () => checkApiKeys(runtime, options.isDecoyApiKey));
    await run('retention.overdue', () => checkRetention(runtime));
    await run('rights.deadlines', () => checkRightsDeadlines(runtime));
  }
  await run('runtime.node', () => checkNodeRuntime(options.nodeVersion ?? process.version, now));
  if (options.advisories !== undefined) {
    const advisories = options.advisories;
    await run('dependencies.advisories', () =>
      advisories === 'offline'
        ? warn('dependencies.advisories', 'dependency advisories not checked (--offline)', 'run custos doctor without --offline where the npm registry is reachable, or `npm audit --omit=dev` by hand')
        : checkAdvisories(advisories),
    );
  }
  return toReport(findings, { ci: options.ci });
}

/**
 * How long the server keeps a report before a request runs the checks again. Verifying the audit
 * log reads the whole log (every MAC, link, checkpoint and tree node): a fresh check of an edited
 * row older than the last run needs the whole read, so there is no incremental shortcut that keeps
 * the tamper check's meaning. Instead the report is shared for this long, and says when it was made
 * and until when it is reused (`generated_at`, `fresh_until`); `custos doctor` always runs afresh.
 */
export const POSTURE_REUSE_MS = 5 * 60_000;

export interface ServerPostureReport {
  readonly report: PostureReport;
  /** When the checks of this report ran. */
  readonly generatedAt: Date;
  /** Until when requests get this report; the first request after it runs the checks again. */
  readonly freshUntil: Date;
}

/**
 * Posture inside a running server (GET /v1/security/posture): its own configuration and files,
 * its database, no outbound request (no probe, no `npm audit`). Runs are not stacked: a request
 * arriving while one runs gets that run's report, and a report is reused for POSTURE_REUSE_MS.
 * Decoy API keys (detection's honeytokens) are left out of the unused-key check, and an altered
 * audit log is told to detection as `audit.verify_failed` (its audit_tamper rule), as `custos
 * doctor` and `custos audit verify` do.
 */
export function createPostureService(deps: {
  runtime: PostureRuntime & Pick<Runtime, 'detection' | 'events'>;
  cwd?: string;
  onError?: (checkId: string, error: unknown) => void;
}) {
  const { runtime } = deps;
  let running: Promise<ServerPostureReport> | undefined;
  let last: ServerPostureReport | undefined;
  return {
    report(): Promise<ServerPostureReport> {
      const now = runtime.clock.now();
      if (last !== undefined && now < last.freshUntil && now >= last.generatedAt) return Promise.resolve(last);
      running ??= runPosture({
        config: runtime.config,
        now,
        ci: false,
        cwd: deps.cwd ?? process.cwd(),
        vault: { runtime },
        ...postureDetection(runtime),
        ...(deps.onError === undefined ? {} : { onError: deps.onError }),
      })
        .then((report) => (last = { report, generatedAt: now, freshUntil: new Date(now.getTime() + POSTURE_REUSE_MS) }))
        .finally(() => (running = undefined));
      return running;
    },
  };
}
export type PostureService = ReturnType<typeof createPostureService>;

/**
 * What posture takes from detection, for the server and `custos doctor` alike: its honeytoken API
 * keys (never used on purpose, so never "unused") and its bus for a failed audit verification.
 */
export function postureDetection(runtime: Pick<Runtime, 'detection' | 'events' | 'clock'>): Pick<PostureOptions, 'isDecoyApiKey' | 'onAuditBroken'> {
  return {
    isDecoyApiKey: (id) => runtime.detection.isDecoyApiKey(id),
    onAuditBroken: (check, reason) =>
      runtime.events.emit({ at: runtime.clock.now(), action: 'audit.verify_failed', outcome: 'failure', actor: 'system:posture', detail: { check, reason: reason.slice(0, 200) } }),
  };
}
