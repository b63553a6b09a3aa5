import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import SQLite from 'better-sqlite3';
import pg from 'pg';
import type { DbKind } from './options.ts';

/**
 * A fresh database for one run: two SQLite files in a new temporary folder, or one new PostgreSQL
 * schema (Custos's tables and the twin's table side by side), dropped again by `cleanup`.
 */
export interface BenchDatabase {
  readonly kind: DbKind;
  readonly label: string;
  /** Database variables for the protected server (and its CLI). */
  readonly protectedEnv: Record<string, string>;
  /** Database variables for the twin. */
  readonly twinEnv: Record<string, string>;
  /** The file or schema the protected server writes, to reopen it for a profile. */
  readonly dir: string;
  /** Refreshes the planner's statistics after seeding, as a database in service would have them. */
  analyze(): Promise<void>;
  cleanup(): Promise<void>;
}

async function withClient<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    return await fn(client);
  } finally {
    await client.end();
  }
}

export async function prepareDatabase(kind: DbKind, pgUrl: string): Promise<BenchDatabase> {
  const dir = mkdtempSync(join(tmpdir(), 'custos-bench-'));
  const custosDir = join(dir, 'custos');
  const twinDir = join(dir, 'twin');
  mkdirSync(custosDir, { mode: 0o700 });
  mkdirSync(twinDir, { mode: 0o700 });
  if (kind === 'sqlite') {
    return {
      kind,
      label: 'SQLite (WAL, synchronous=FULL)',
      protectedEnv: { CUSTOS_DATA_DIR: custosDir },
      twinEnv: { CUSTOS_DATA_DIR: twinDir, DATABASE_URL: `sqlite:${join(twinDir, 'twin.db')}` },
      dir,
      async analyze() {
        for (const file of [join(custosDir, 'custos.db'), join(twinDir, 'twin.db')]) {
          const conn = new SQLite(file);
          try {
            // Statistics for the planner, without STAT4 samples: with them SQLite re-prepares
            // every statement whose plan could depend on a bound value, on every new value
            // (measured: three times the cost of the lookup itself). Custos clears them at start.
            conn.exec('BEGIN; ANALYZE; DELETE FROM sqlite_stat4; COMMIT');
          } finally {
            conn.close();
          }
        }
      },
      async cleanup() {
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  const schema = `bench_${randomBytes(6).toString('hex')}`;
  const version = await withClient(pgUrl, async (c) => {
    await c.query(`CREATE SCHEMA "${schema}"`);
    const r = await c.query<{ server_version: string }>('SHOW server_version');
    return r.rows[0]?.server_version ?? '?';
  });
  const common = { DATABASE_URL: pgUrl, DATABASE_SCHEMA: schema, DATABASE_POOL_SIZE: '10' };
  return {
    kind,
    label: `PostgreSQL ${version.split(' ')[0] ?? version} (pool 10)`,
    protectedEnv: { ...common, CUSTOS_DATA_DIR: custosDir },
    twinEnv: { ...common, CUSTOS_DATA_DIR: twinDir },
    dir,
    async analyze() {
      await withClient(pgUrl, async (c) => {
        const tables = await c.query<{ t: string }>('SELECT table_name AS t FROM information_schema.tables WHERE table_schema = $1', [schema]);
        for (const { t } of tables.rows) await c.query(`ANALYZE "${schema}"."${t}"`);
      });
    },
    async cleanup() {
      await withClient(pgUrl, (c) => c.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`));
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
