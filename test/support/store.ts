import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Secret } from '../../src/kernel/secret.ts';
import { migrate, openStore, type Store } from '../../src/store/database.ts';
import type { Config } from '../../src/config/config.ts';

/**
 * Every storage test runs on the database the suite was started for: SQLite files by default,
 * PostgreSQL when DATABASE_URL is a postgres:// URL (CI runs the suite once each way). Each call
 * gets its own SQLite file or its own PostgreSQL schema, dropped again by `cleanup`.
 */
export const TEST_PG_URL = process.env.DATABASE_URL?.startsWith('postgres') ? process.env.DATABASE_URL : undefined;
export const TEST_DIALECT: 'sqlite' | 'postgres' = TEST_PG_URL === undefined ? 'sqlite' : 'postgres';

export interface TestDatabase {
  readonly database: Config['database'];
  /** DATABASE_URL / DATABASE_SCHEMA / CUSTOS_DATA_DIR for a child process using the same database. */
  readonly env: Record<string, string>;
  readonly dir: string;
  cleanup(): Promise<void>;
}

export function testDatabase(): TestDatabase {
  const dir = mkdtempSync(join(tmpdir(), 'custos-test-'));
  if (TEST_PG_URL === undefined) {
    const file = join(dir, 'custos.db');
    return {
      database: { kind: 'sqlite', file },
      env: { DATABASE_URL: `sqlite:${file}`, CUSTOS_DATA_DIR: dir },
      dir,
      async cleanup() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const schema = `t_${randomBytes(6).toString('hex')}`;
  const url = TEST_PG_URL;
  return {
    database: { kind: 'postgres', url: new Secret(url), schema, poolSize: 5 },
    env: { DATABASE_URL: url, DATABASE_SCHEMA: schema, CUSTOS_DATA_DIR: dir },
    dir,
    async cleanup() {
      const client = new pg.Client({ connectionString: url });
      await client.connect();
      try {
        await client.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await client.end();
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** A migrated store on a fresh database; `close` closes it and drops the database. */
export async function testStore(): Promise<Store & { test: TestDatabase }> {
  const test = testDatabase();
  const store = await openStore(test.database);
  await migrate(store);
  return {
    ...store,
    test,
    async close() {
      await store.close();
      await test.cleanup();
    },
  };
}
