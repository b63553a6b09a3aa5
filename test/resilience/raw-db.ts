import SQLite from 'better-sqlite3';
import pg from 'pg';
import type { TestDatabase } from '../support/store.ts';

/**
 * Raw SQL on a test database, outside Custos: what an administrator (or an attacker with database
 * access) can do. Positional parameters are written `?` and translated for PostgreSQL.
 */
export interface RawDb {
  query<T = Record<string, unknown>>(text: string, params?: readonly unknown[]): Promise<T[]>;
  /** Names of the tables Custos created (not SQLite's own). */
  tables(): Promise<string[]>;
  close(): Promise<void>;
}

export async function rawDb(db: TestDatabase): Promise<RawDb> {
  if (db.database.kind === 'sqlite') {
    const sqlite = new SQLite(db.database.file);
    sqlite.pragma('busy_timeout = 10000');
    return {
      async query<T>(text: string, params: readonly unknown[] = []) {
        const stmt = sqlite.prepare(text);
        if (stmt.reader) return stmt.all(...params) as T[];
        stmt.run(...params);
        return [];
      },
      async tables() {
        const rows = sqlite.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name").all() as { name: string }[];
        return rows.map((r) => r.name);
      },
      async close() {
        sqlite.close();
      },
    };
  }
  const { schema, url } = db.database;
  const client = new pg.Client({ connectionString: url.reveal(), ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }) });
  await client.connect();
  return {
    async query<T>(text: string, params: readonly unknown[] = []) {
      let n = 0;
      const result = await client.query(text.replace(/\?/g, () => `$${++n}`), [...params]);
      return result.rows as T[];
    },
    async tables() {
      const result = await client.query<{ table_name: string }>(
        'SELECT table_name FROM information_schema.tables WHERE table_schema = $1 ORDER BY table_name',
        [schema ?? 'public'],
      );
      return result.rows.map((r) => r.table_name);
    },
    async close() {
      await client.end();
    },
  };
}

/**
 * Gives a PostgreSQL schema the bookkeeping tables of Kysely's own migrator, as another
 * application (or an older Custos) in a neighbouring schema of the same database would have.
 * Custos once looked for those tables in every schema and failed to migrate a fresh schema while
 * another one held them ('relation "kysely_migration_lock" does not exist'); see
 * resilience.shared-postgres.test.ts. A no-op on SQLite.
 */
export async function addKyselyMigrationTables(db: TestDatabase): Promise<void> {
  if (db.database.kind !== 'postgres' || db.database.schema === undefined) return;
  const client = new pg.Client({ connectionString: db.database.url.reveal() });
  await client.connect();
  try {
    const s = db.database.schema;
    await client.query(`CREATE SCHEMA IF NOT EXISTS "${s}"`);
    await client.query(`CREATE TABLE IF NOT EXISTS "${s}".kysely_migration (name varchar(255) NOT NULL PRIMARY KEY, timestamp varchar(255) NOT NULL)`);
    await client.query(`CREATE TABLE IF NOT EXISTS "${s}".kysely_migration_lock (id varchar(255) NOT NULL PRIMARY KEY, is_locked integer NOT NULL DEFAULT 0)`);
  } finally {
    await client.end();
  }
}
