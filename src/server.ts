import { ConfigError, loadConfig } from './config/config.ts';
import { buildApp } from './app.ts';
import { loadTls } from './http/tls.ts';
import { InventoryError } from './modules/inventory/index.ts';
import { openRuntime, type Runtime } from './runtime.ts';

/**
 * Starts the service: configuration (read once, validated), runtime (migrations, keys, services),
 * TLS, listener, and a graceful stop on SIGINT/SIGTERM that flushes the audit log.
 * A bad setting stops start-up with a message naming it and exit code 78 (EX_CONFIG).
 */
export async function serve(env: Record<string, string | undefined> = process.env): Promise<void> {
  let runtime: Runtime | undefined;
  // Files the service creates (database, WAL, keyring, TLS key) are readable by its user only.
  process.umask(0o077);
  try {
    const config = loadConfig(env);
    runtime = await openRuntime(config);
    const app = await buildApp(runtime, { tls: await loadTls(config) });
    await app.listen({ host: config.host, port: config.port });
    const scheme = config.tls.mode === 'off' ? 'http' : 'https';
    const host = config.host.includes(':') ? `[${config.host}]` : config.host;
    runtime.logger.info(
      { url: `${scheme}://${host}:${config.port}`, database: config.database.kind, inventory: runtime.inventory.sources },
      'custos is listening',
    );
    process.stderr.write(`custos: serving ${scheme}://${host}:${config.port} (docs at /docs)\n`);
    const stop = async () => {
      await app.close();
      await runtime?.close();
      process.exit(0);
    };
    process.once('SIGINT', () => void stop());
    process.once('SIGTERM', () => void stop());
  } catch (error) {
    await runtime?.close().catch(() => undefined);
    if (error instanceof ConfigError || error instanceof InventoryError) {
      process.stderr.write(`custos: ${error.message}\n`);
      process.exit(78);
    }
    const message = error instanceof Error ? error.message : String(error);
    process.stderr.write(`custos: could not start: ${message}\n`);
    process.exit(1);
  }
}
