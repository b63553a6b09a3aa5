import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import pg from 'pg';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config/config.ts';
import { openRuntime, type Runtime } from '../src/runtime.ts';
import type { DbKind } from './options.ts';

/**
 * A whole Custos in this process (runtime and app, driven through `inject`) on a fresh SQLite
 * file or PostgreSQL schema, for the benches that time services rather than a server under load
 * (cards.ts, rights.ts). `close` drops the database again.
 */
export async function inProcessCustos(kind: DbKind, pgUrl: string, name: string): Promise<{ runtime: Runtime; app: FastifyInstance; close(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), `custos-bench-${name}-`));
  const schema = `bench_${randomBytes(4).toString('hex')}`;
  const env: Record<string, string> = {
    CUSTOS_DATA_DIR: dir,
    DATABASE_URL: kind === 'postgres' ? pgUrl : `sqlite:${join(dir, 'custos.db')}`,
    ...(kind === 'postgres' ? { DATABASE_SCHEMA: schema } : {}),
    CUSTOS_ROOT_KEY: randomBytes(32).toString('base64'),
    CUSTOS_PLAIN_HTTP: 'true',
    CUSTOS_TRUST_PROXY: '127.0.0.1',
    CUSTOS_RATE_LIMIT: '10000000',
    CUSTOS_LOG_LEVEL: 'silent',
  };
  const runtime = await openRuntime(loadConfig(env));
  const app = await buildApp(runtime);
  await app.ready();
  return {
    runtime,
    app,
    async close() {
      await app.close();
      await runtime.close();
      rmSync(dir, { recursive: true, force: true });
      if (kind !== 'postgres') return;
      const client = new pg.Client({ connectionString: pgUrl });
      await client.connect();
      await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      await client.end();
    },
  };
}
