import { existsSync } from 'node:fs';
import { relative, isAbsolute } from 'node:path';
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../config/config.ts';
import { AppError } from '../kernel/errors.ts';
import { InventoryError } from '../modules/inventory/index.ts';
import { openRuntime, type Runtime } from '../runtime.ts';
import { createLogger } from '../kernel/logger.ts';
import { processIo, UsageError, type Io } from './io.ts';
import { APIKEY_USAGE, apikeyCommand } from './commands/apikey.ts';
import { KEYS_USAGE, keysCommand } from './commands/keys.ts';
import { AUDIT_USAGE, auditCommand, auditOffline } from './commands/audit.ts';
import { STAFF_USAGE, staffCommand } from './commands/staff.ts';
import { PROCESSORS_USAGE, processorsCommand } from './commands/processors.ts';
import { ROPA_USAGE, ropaCommand } from './commands/ropa.ts';
import { CARDS_USAGE, cardsCommand } from './commands/cards.ts';
import { RETENTION_USAGE, retentionCommand } from './commands/retention.ts';
import { INCIDENT_USAGE, incidentCommand } from './commands/incident.ts';
import { DOCTOR_USAGE, doctorCommand } from './commands/doctor.ts';
import { DETECTION_USAGE, detectionCommand, HONEYTOKEN_USAGE, honeytokenCommand } from './commands/detection.ts';

/**
 * `custos <command>`: the same environment as the server (config/config.ts), calling services
 * directly, never HTTP. Exit codes: 0 ok, 1 failure, 2 usage, 78 configuration.
 */
export type CommandRun = (runtime: Runtime, args: string[], io: Io) => Promise<number>;

/** A command that opens the runtime itself, or not at all (`doctor`: it reports a vault that will not open). */
export type ConfigRun = (config: Config, args: string[], io: Io, env: Record<string, string | undefined>) => Promise<number>;

/**
 * The commands that open the runtime, each with its own usage lines (the help lists exactly these).
 * A function, not a constant: the command modules import this one, so their exports may not be
 * initialised yet while this module is evaluated.
 */
export function commands(): ReadonlyMap<string, { run: CommandRun; usage: string } | { runWithConfig: ConfigRun; usage: string }> {
  return new Map<string, { run: CommandRun; usage: string } | { runWithConfig: ConfigRun; usage: string }>([
    ['apikey', { run: apikeyCommand, usage: APIKEY_USAGE }],
    ['keys', { run: keysCommand, usage: KEYS_USAGE }],
    ['audit', { run: auditCommand, usage: AUDIT_USAGE }],
    ['staff', { run: staffCommand, usage: STAFF_USAGE }],
    ['processors', { run: processorsCommand, usage: PROCESSORS_USAGE }],
    ['ropa', { run: ropaCommand, usage: ROPA_USAGE }],
    ['cards', { run: cardsCommand, usage: CARDS_USAGE }],
    ['retention', { run: retentionCommand, usage: RETENTION_USAGE }],
    ['incident', { run: incidentCommand, usage: INCIDENT_USAGE }],
    ['doctor', { runWithConfig: doctorCommand, usage: DOCTOR_USAGE }],
    ['honeytoken', { run: honeytokenCommand, usage: HONEYTOKEN_USAGE }],
    ['detection', { run: detectionCommand, usage: DETECTION_USAGE }],
  ]);
}

/** `custos help`: serve and migrate, then every command's own usage lines. */
export function usage(): string {
  return `usage: custos <command> [options]

  serve                                         start the HTTPS service (same as npm start)
  migrate                                       bring the database schema up to date
${[...commands().values()].map((c) => c.usage).join('\n')}

Configuration comes from the environment, as for the server (see README).`;
}


export async function main(argv: string[], io: Io = processIo(), env: Record<string, string | undefined> = process.env): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    (command === undefined ? io.err : io.out)(usage());
    return command === undefined ? 2 : 0;
  }
  if (command === 'serve') {
    const { serve } = await import('../server.ts');
    await serve(env);
    return 0;
  }
  const entry = commands().get(command);
  if (command !== 'migrate' && entry === undefined) {
    io.err(`custos: unknown command '${command}'\n\n${usage()}`);
    return 2;
  }
  let runtime: Runtime | undefined;
  process.umask(0o077);
  try {
    if (command === 'audit') {
      const offline = auditOffline(rest, io);
      if (offline !== undefined) return offline;
    }
    const config = loadConfig(env);
    if (command !== 'migrate') refuseNewDataDir(config);
    if (entry !== undefined && 'runWithConfig' in entry) return await entry.runWithConfig(config, rest, io, env);
    runtime = await openRuntime(config, { background: false, logger: createLogger(env.CUSTOS_LOG_LEVEL ?? 'warn', process.stderr) });
    if (command === 'migrate') {
      io.out('database schema is up to date');
      return 0;
    }
    return await (entry as { run: CommandRun }).run(runtime, rest, io);
  } catch (error) {
    io.done();
    if (error instanceof UsageError) {
      io.err(`custos ${command}: ${error.message}`);
      return 2;
    }
    if (error instanceof ConfigError || error instanceof InventoryError) {
      io.err(`custos: ${error.message}`);
      return 78;
    }
    if (error instanceof AppError) {
      io.err(`custos ${command}: ${error.message} (${error.code})`);
      return 1;
    }
    io.err(`custos ${command}: ${error instanceof Error ? error.message : String(error)}`);
    return 1;
  } finally {
    await runtime?.close();
  }
}

/**
 * Only `serve` and `migrate` may create the data folder: any other command run from the wrong
 * folder would otherwise make a new, empty vault there (a new SQLite database and keyring) and
 * answer from it as if nothing were wrong. The folder matters when the SQLite database lies in it
 * or the root key comes from its keyring file (no CUSTOS_ROOT_KEY).
 */
function refuseNewDataDir(config: Config): void {
  const dir = config.dataDir;
  const inside = (file: string) => {
    const rel = relative(dir, file);
    return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
  };
  const needed = (config.database.kind === 'sqlite' && inside(config.database.file)) || config.rootKey === undefined;
  if (needed && !existsSync(dir))
    throw new ConfigError(
      `there is no data folder at ${dir} (CUSTOS_DATA_DIR): run custos in the folder the server runs in, or set CUSTOS_DATA_DIR to its data folder; only custos serve and custos migrate create a new one`,
    );
}

/** parseArgs with our usage errors. */
export function parse<const T extends ParseArgsOptionsConfig>(args: string[], options: T) {
  try {
    return parseArgs({ args, options, allowPositionals: true, strict: true });
  } catch (error) {
    throw new UsageError(error instanceof Error ? error.message : String(error));
  }
}
