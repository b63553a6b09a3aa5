import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config/config.ts';
import { createLogger } from '../src/kernel/logger.ts';
import { openRuntime, type Runtime } from '../src/runtime.ts';
import type { BenchDatabase } from './databases.ts';
import { buildTwinApp } from './twin/app.ts';
import { openTwinStore, type TwinStore } from './twin/store.ts';

/** The environment the protected server runs with in the bench (servers.ts adds host and port). */
export const PROTECTED_ENV = {
  CUSTOS_PLAIN_HTTP: 'true',
  CUSTOS_TRUST_PROXY: '127.0.0.1',
  CUSTOS_RATE_LIMIT: '10000000',
  CUSTOS_LOG_LEVEL: 'warn',
} as const;

export interface InProcess {
  readonly runtime: Runtime;
  readonly app: FastifyInstance;
  readonly twin: FastifyInstance;
  readonly twinStore: TwinStore;
  close(): Promise<void>;
}

/** A PostgreSQL URL whose connections carry `name` as their application_name (pg_stat_activity). */
export const withApplicationName = (url: string, name: string) => `${url}${url.includes('?') ? '&' : '?'}application_name=${name}`;

/**
 * The protected app and its unprotected twin in this process, over a fresh bench database, for
 * timings through `inject` (parts.ts, cpu.ts): the same configuration as the bench's servers. On
 * PostgreSQL, `names` gives each side's connections an application_name (cpu.ts finds their
 * database backends by it).
 */
export async function openInProcess(db: BenchDatabase, names?: { protected: string; twin: string }): Promise<InProcess> {
  const url = db.protectedEnv.DATABASE_URL;
  const named = (name: string | undefined) => (url === undefined || name === undefined ? {} : { DATABASE_URL: withApplicationName(url, name) });
  const config = loadConfig({ ...db.protectedEnv, ...PROTECTED_ENV, CUSTOS_ROOT_KEY: randomBytes(32).toString('base64'), ...named(names?.protected) });
  const runtime = await openRuntime(config, { logger: createLogger('warn') });
  const app = await buildApp(runtime);
  await app.ready();
  const twinConfig = loadConfig({ ...db.twinEnv, CUSTOS_ROOT_KEY: randomBytes(32).toString('base64'), ...named(names?.twin) });
  const twinStore = await openTwinStore(twinConfig.database);
  const twin = await buildTwinApp(twinStore);
  await twin.ready();
  return {
    runtime,
    app,
    twin,
    twinStore,
    async close() {
      await twin.close();
      await twinStore.close();
      await app.close();
      await runtime.close();
    },
  };
}
