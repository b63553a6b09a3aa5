import { existsSync } from 'node:fs';
import { relative, isAbsolute } from 'node:path';
import { parseArgs, type ParseArgsOptionsConfig } from 'node:util';
import { ConfigError, loadConfig, type Config } from '../config/config.ts';
import { AppError } from '../kernel/errors.ts';
import { InventoryError } from '../modules/inventory/index.ts';
import { openRuntime, type Runtime } from '../runtime.ts';
import { createLogger } from '../kernel/logger.ts';
import { processIo, UsageError, type Io } from './io.ts';
import { apikeyCommand } from './commands/apikey.ts';
import { keysCommand } from './commands/keys.ts';
import { auditCommand } from './commands/audit.ts';
import { staffCommand } from './commands/staff.ts';
import { retentionCommand } from './commands/retention.ts';

/**
 * `custos <command>`: the same environment as the server (config/config.ts), calling services
 * directly, never HTTP. Exit codes: 0 ok, 1 failure, 2 usage, 78 configuration.
 */
export const USAGE = `usage: custos <command> [options]

  serve                                         start the HTTPS service (same as npm start)
  migrate                                       bring the database schema up to date
  apikey create --name NAME --purposes a,b      create an API key; prints it once on stdout
  apikey list [--json]                          list API keys (never the secrets)
  apikey revoke ID                              revoke a key at once
  keys rotate                                   add a key-encryption key version and re-wrap every data key
  keys status [--json]                          key versions and how many data keys each wraps
  audit verify                                  check the audit log's hash chain, MACs and signed checkpoints
  retention run [--dry-run] [--json]            one retention sweep now: expired holds, request records, dead sessions
  staff create --email E --role R               invite a staff member (link by mail; printed once without a mailer)
  staff invite --email E                        a new invitation link for a member who has not accepted yet
  staff list [--json]                           staff members, roles, status, second factor
  staff role --email E --role R                 change a member's role
  staff suspend|reactivate --email E            stop or restore a member's access at once
  staff roles [--json]                          roles with their purposes and permissions
  staff training course add --course C --required-for all|r1,r2 [--title T]
  staff training course remove|list [--course C]
  staff training complete --email E --course C --date YYYY-MM-DD
  staff training status [--email E] [--json]    training per member; blocked members are refused personal data

Configuration comes from the environment, as for the server (see README).`;

export type CommandRun = (runtime: Runtime, args: string[], io: Io) => Promise<number>;

const COMMANDS: Record<string, CommandRun> = { apikey: apikeyCommand, keys: keysCommand, audit: auditCommand, staff: staffCommand, retention: retentionCommand };

export async function main(argv: string[], io: Io = processIo(), env: Record<string, string | undefined> = process.env): Promise<number> {
  const [command, ...rest] = argv;
  if (command === undefined || command === 'help' || command === '--help' || command === '-h') {
    (command === undefined ? io.err : io.out)(USAGE);
    return command === undefined ? 2 : 0;
  }
  if (command === 'serve') {
    const { serve } = await import('../server.ts');
    await serve(env);
    return 0;
  }
  const run = COMMANDS[command];
  if (command !== 'migrate' && run === undefined) {
    io.err(`custos: unknown command '${command}'\n\n${USAGE}`);
    return 2;
  }
  let runtime: Runtime | undefined;
  process.umask(0o077);
  try {
    const config = loadConfig(env);
    if (command !== 'migrate') refuseNewDataDir(config);
    runtime = await openRuntime(config, { background: false, logger: createLogger(env.CUSTOS_LOG_LEVEL ?? 'warn', process.stderr) });
    if (command === 'migrate') {
      io.out('database schema is up to date');
      return 0;
    }
    return await run!(runtime, rest, io);
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
