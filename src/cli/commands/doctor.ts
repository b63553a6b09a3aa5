import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../config/config.ts';
import { KEYRING_FILE } from '../../crypto/keyring.ts';
import { createLogger } from '../../kernel/logger.ts';
import { renderText } from '../../modules/posture/render.ts';
import { postureDetection, runPosture, type PostureOptions } from '../../modules/posture/service.ts';
import { openRuntime, type Runtime } from '../../runtime.ts';
import type { Io } from '../io.ts';
import { UsageError } from '../io.ts';
import { parse } from '../main.ts';

export const DOCTOR_USAGE = `  doctor [--url https://HOST:PORT] [--ca FILE] [--ci] [--offline] [--json]
                                                check the security posture: TLS, key files, key ages, secrets, staff
                                                MFA and training, the audit log, retention, request deadlines, Node.js,
                                                dependency advisories (npm audit; --offline: not checked); --url probes
                                                a running server's TLS; --ci (or CI=true): advisories and the embedded
                                                defaults warn instead of fail; exit 1 on any failure`;

/**
 * `custos doctor`: reads the configuration (as every command does) and the database itself, and
 * with `--url` probes a running server over the network. It opens the vault after the checks that
 * need none, so a vault that cannot open (a keyring readable by others) is still reported with
 * the reason. Exit 0 when nothing fails, 1 when something does (warnings do not), 2 on a usage
 * error, 78 on a configuration error.
 */
export async function doctorCommand(config: Config, args: string[], io: Io, env: Record<string, string | undefined>): Promise<number> {
  const { values, positionals } = parse(args, { url: { type: 'string' }, ca: { type: 'string' }, ci: { type: 'boolean' }, offline: { type: 'boolean' }, json: { type: 'boolean' } });
  if (positionals.length > 0) throw new UsageError(`unexpected ${positionals[0]}\n${DOCTOR_USAGE}`);
  let url: URL | undefined;
  if (values.url !== undefined) {
    try {
      url = new URL(values.url);
    } catch {
      throw new UsageError('--url must be an https:// URL such as https://127.0.0.1:8443');
    }
    if (url.protocol !== 'https:') throw new UsageError('--url must be an https:// URL such as https://127.0.0.1:8443');
  }
  let ca: string | undefined;
  if (values.ca !== undefined) {
    try {
      ca = readFileSync(values.ca, 'utf8');
    } catch {
      throw new UsageError(`--ca ${values.ca} cannot be read`);
    }
  }
  const ci = values.ci === true || env.CI === 'true' || env.CI === '1';
  let runtime: Runtime | undefined;
  let vault: PostureOptions['vault'];
  try {
    // Opening the vault would make a new keyring where there is none: doctor only reads.
    if (config.root.kind === 'keyring' && !existsSync(join(config.dataDir, KEYRING_FILE)))
      throw new Error(`there is no keyring file in ${config.dataDir} yet (the server makes one on its first start)`);
    runtime = await openRuntime(config, { background: false, logger: createLogger(env.CUSTOS_LOG_LEVEL ?? 'warn', process.stderr) });
    vault = { runtime };
  } catch (error) {
    vault = { error };
  }
  try {
    const report = await runPosture({
      config,
      now: runtime?.clock.now() ?? new Date(),
      ci,
      cwd: process.cwd(),
      vault,
      url,
      ca,
      advisories: values.offline === true ? 'offline' : { env },
      ...(runtime === undefined ? {} : postureDetection(runtime)),
      progress: (done, total) => io.progress(`verifying the audit log: ${done}/${total}`),
      onError: (id, error) => io.err(`custos doctor: ${id}: ${error instanceof Error ? error.message : String(error)}`),
    });
    io.done();
    if (values.json === true) io.out(JSON.stringify(report, null, 2));
    else for (const line of renderText(report)) io.out(line);
    return report.status === 'fail' ? 1 : 0;
  } finally {
    await runtime?.close();
  }
}
