import { randomBytes } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config/config.ts';
import type { Clock } from '../../src/kernel/clock.ts';
import { createLogger } from '../../src/kernel/logger.ts';
import { openRuntime, type Runtime } from '../../src/runtime.ts';
import { testDatabase, type TestDatabase } from './store.ts';

/**
 * A whole Custos (runtime + Fastify app) on a fresh test database, driven with `app.inject()`.
 * `bearer(purposes)` makes an API key and returns its Authorization header value.
 */
export interface TestApp {
  readonly app: FastifyInstance;
  readonly runtime: Runtime;
  readonly db: TestDatabase;
  /** The environment this app was configured with (for child processes on the same database). */
  readonly env: Record<string, string>;
  bearer(purposes: readonly string[], name?: string): Promise<string>;
  close(): Promise<void>;
}

export async function testApp(options: { env?: Record<string, string>; clock?: Clock; logStream?: NodeJS.WritableStream } = {}): Promise<TestApp> {
  const db = testDatabase();
  const env: Record<string, string> = {
    ...db.env,
    CUSTOS_ROOT_KEY: randomBytes(32).toString('base64'),
    CUSTOS_PLAIN_HTTP: 'true',
    CUSTOS_TRUST_PROXY: '127.0.0.1',
    CUSTOS_RATE_LIMIT: '100000',
    CUSTOS_AUTH_FAILURE_LIMIT: '100000',
    CUSTOS_LOG_LEVEL: options.logStream === undefined ? 'silent' : 'info',
    ...options.env,
  };
  const config = loadConfig(env);
  const logger = createLogger(config.logLevel, options.logStream);
  const runtime = await openRuntime(config, { logger, ...(options.clock === undefined ? {} : { clock: options.clock }) });
  const app = await buildApp(runtime);
  await app.ready();
  return {
    app,
    runtime,
    db,
    env,
    async bearer(purposes, name = 'test') {
      const { key } = await runtime.apiKeys.create({ name, purposes });
      return `Bearer ${key.reveal()}`;
    },
    async close() {
      await app.close();
      await runtime.close();
      await db.cleanup();
    },
  };
}
