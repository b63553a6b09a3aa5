import { createHash } from 'node:crypto';
import { mkdirSync } from 'node:fs';
import { dirname } from 'node:path';
import SQLite from 'better-sqlite3';
import { CompiledQuery, Kysely, PostgresDialect, SqliteDialect, SqliteDriver, sql, type DatabaseConnection, type Driver } from 'kysely';
import pg from 'pg';
import type { Config } from '../config/config.ts';
import type { Database } from './schema.ts';
import { createWriteBatcher, type WriteBatcher } from './write-batch.ts';
import * as m0001 from './migrations/0001-vault-core.ts';
import * as m0002 from './migrations/0002-identity.ts';
import * as m0003 from './migrations/0003-staff.ts';
import * as m0004 from './migrations/0004-sessions.ts';
import * as m0005 from './migrations/0005-staff-role-changes.ts';
import * as m0006 from './migrations/0006-one-record-per-person.ts';
import * as m0007 from './migrations/0007-idempotency.ts';
import * as m0008 from './migrations/0008-session-dead-uses.ts';
import * as m0009 from './migrations/0009-key-lifecycle.ts';
import * as m0010 from './migrations/0010-consent.ts';
import * as m0012 from './migrations/0012-record-envelope.ts';
import * as m0013 from './migrations/0013-audit-merkle.ts';
import * as m0014 from './migrations/0014-rights.ts';
import * as m0015 from './migrations/0015-cards.ts';
import * as m0016 from './migrations/0016-detection.ts';
import * as m0017 from './migrations/0017-incidents.ts';
import * as m0018 from './migrations/0018-speed.ts';
import * as m0019 from './migrations/0019-apikey-last-used.ts';
import * as m0020 from './migrations/0020-card-sessions.ts';
import * as m0021 from './migrations/0021-rights-export.ts';
import * as m0022 from './migrations/0022-key-state-bigint.ts';
import * as m0023 from './migrations/0023-processor-webhooks.ts';
import * as m0024 from './migrations/0024-audit-write-once.ts';
import * as m0025 from './migrations/0025-blind-index-versions.ts';
import * as m0028 from './migrations/0028-detection-origins.ts';

export type Dialect = 'sqlite' | 'postgres';

export interface Store {
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  /**
   * Runs one read-only statement on the hot path, outside any transaction: on SQLite through a
   * connection of its own (a prepared statement, no query builder, no wait behind a write
   * transaction on the main connection, and never a view of another request's uncommitted write);
   * on PostgreSQL through the pool, as a named statement (planned once per connection), which
   * also serves the audit log's batch insert there (one statement, autocommit). Build `sql` once
   * with Kysely's `compile()`.
   */
  read<R>(sql: string, parameters: readonly unknown[]): Promise<R[]>;
  /** SQLite: writes group-committed into one transaction (write-batch.ts). */
  readonly batch?: WriteBatcher;
  close(): Promise<void>;
}

/** A migration may return counts for the log (never personal data). */
export type MigrationReport = Readonly<Record<string, number>>;

const MIGRATIONS: Record<string, { up(db: Kysely<unknown>, dialect: Dialect): Promise<MigrationReport | void> }> = {
  '0001-vault-core': m0001,
  '0002-identity': m0002,
  '0003-staff': m0003,
  '0004-sessions': m0004,
  '0005-staff-role-changes': m0005,
  '0006-one-record-per-person': m0006,
  '0007-idempotency': m0007,
  '0008-session-dead-uses': m0008,
  '0009-key-lifecycle': m0009,
  '0010-consent': m0010,
  '0012-record-envelope': m0012,
  '0013-audit-merkle': m0013,
  '0014-rights': m0014,
  '0015-cards': m0015,
  '0016-detection': m0016,
  '0017-incidents': m0017,
  '0018-speed': m0018,
  '0019-apikey-last-used': m0019,
  '0020-card-sessions': m0020,
  '0021-rights-export': m0021,
  '0022-key-state-bigint': m0022,
  '0023-processor-webhooks': m0023,
  '0024-audit-write-once': m0024,
  '0025-blind-index-versions': m0025,
  '0028-detection-origins': m0028,
};

/**
 * Kysely prepares every query anew; on SQLite, preparing costs as much as running a small query.
 * Statements are cached by SQL text (bounded), and a statement still busy iterating is never
 * handed out twice.
 */
export function cachingStatements(sqlite: SQLite.Database, size = 512): SQLite.Database {
  const cache = new Map<string, SQLite.Statement>();
  const prepare = (text: string): SQLite.Statement => {
    const hit = cache.get(text);
    if (hit !== undefined && !hit.busy) return hit;
    const stmt = sqlite.prepare(text);
    if (hit === undefined) {
      if (cache.size >= size) cache.delete(cache.keys().next().value!);
      cache.set(text, stmt);
    }
    return stmt;
  };
  return new Proxy(sqlite, { get: (target, prop, receiver) => (prop === 'prepare' ? prepare : Reflect.get(target, prop, receiver)) });
}

/**
 * Transactions on SQLite begin IMMEDIATE: they take the write lock up front (waiting up to
 * busy_timeout for it) instead of upgrading a read snapshot later, which fails at once with
 * SQLITE_BUSY when another connection (the audit writer thread, a CLI process) committed meanwhile.
 */
class ImmediateSqliteDriver extends SqliteDriver {
  override async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }
}

export class ImmediateSqliteDialect extends SqliteDialect {
  readonly #config: ConstructorParameters<typeof SqliteDialect>[0];
  constructor(config: ConstructorParameters<typeof SqliteDialect>[0]) {
    super(config);
    this.#config = config;
  }
  override createDriver(): Driver {
    return new ImmediateSqliteDriver(this.#config);
  }
}

/**
 * SQLite re-prepares a statement on every new bound value when STAT4 samples (written by ANALYZE)
 * could change its plan; measured on the vault's lookups, that tripled their cost. The samples
 * are removed at start (the row counts of sqlite_stat1 stay), so a database someone ANALYZEd runs
 * at full speed again after a restart.
 */
function dropStat4Samples(sqlite: SQLite.Database): void {
  const stat4 = sqlite.prepare("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'sqlite_stat4'").get();
  if (stat4 !== undefined && sqlite.prepare('SELECT 1 FROM sqlite_stat4 LIMIT 1').get() !== undefined) sqlite.exec('DELETE FROM sqlite_stat4');
}

/** PostgreSQL int8 and numeric come back as strings by default; our counters fit in a double. */
const pgTypes = {
  getTypeParser(oid: number, format?: 'text' | 'binary') {
    if (oid === 20) return (v: string) => Number(v);
    return pg.types.getTypeParser(oid, format as 'text');
  },
};

/**
 * Opens the configured database. SQLite runs in WAL mode with synchronous=FULL, so that an
 * acknowledged write survives a crash of the process or the machine; PostgreSQL gets a pool whose
 * connections use the configured schema.
 */
export async function openStore(database: Config['database']): Promise<Store> {
  if (database.kind === 'sqlite') {
    mkdirSync(dirname(database.file), { recursive: true, mode: 0o700 });
    const sqlite = new SQLite(database.file);
    sqlite.pragma('journal_mode = WAL');
    sqlite.pragma('synchronous = FULL');
    sqlite.pragma('busy_timeout = 10000');
    sqlite.pragma('foreign_keys = ON');
    dropStat4Samples(sqlite);
    const db = new Kysely<Database>({ dialect: new ImmediateSqliteDialect({ database: cachingStatements(sqlite) }) });
    // WAL lets a second connection read the last committed state while the first one writes.
    const reader = sqlite.memory ? sqlite : new SQLite(database.file);
    if (reader !== sqlite) {
      reader.pragma('busy_timeout = 10000');
      reader.pragma('query_only = ON');
    }
    const statements = new Map<string, SQLite.Statement>();
    return {
      db,
      dialect: 'sqlite',
      batch: createWriteBatcher(db, sqlite),
      read<R>(text: string, parameters: readonly unknown[]): Promise<R[]> {
        try {
          let stmt = statements.get(text);
          if (stmt === undefined) {
            if (statements.size >= 256) statements.clear();
            stmt = reader.prepare(text);
            statements.set(text, stmt);
          }
          return Promise.resolve(stmt.all(...parameters) as R[]);
        } catch (error) {
          return Promise.reject(error as Error);
        }
      },
      async close() {
        await db.destroy();
        if (reader !== sqlite) reader.close();
      },
    };
  }
  const schema = database.schema;
  if (schema !== undefined) {
    const admin = new pg.Client({ connectionString: database.url.reveal() });
    await admin.connect();
    try {
      await admin.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
    } catch (error) {
      // Two processes creating the same schema at once: the loser sees a unique violation.
      if ((error as { code?: string }).code !== '23505') throw error;
    } finally {
      await admin.end();
    }
  }
  const pool = new pg.Pool({
    connectionString: database.url.reveal(),
    max: database.poolSize,
    types: pgTypes,
    ...(schema === undefined ? {} : { options: `-c search_path=${schema}` }),
  });
  const db = new Kysely<Database>({ dialect: new PostgresDialect({ pool }) });
  const statementNames = new Map<string, string>();
  return {
    db,
    dialect: 'postgres',
    // Named statements: each pool connection parses and plans a hot statement once, not on every
    // call (the planning alone cost more than running the vault's lookups).
    read: async <R>(text: string, parameters: readonly unknown[]) => {
      let name = statementNames.get(text);
      if (name === undefined) {
        name = `custos_${createHash('sha256').update(text).digest('base64url').slice(0, 22)}`;
        statementNames.set(text, name);
      }
      return (await pool.query({ name, text, values: [...parameters] })).rows as R[];
    },
    close: () => db.destroy(),
  };
}

/**
 * Brings the schema up to date, one transaction for the whole run, under a lock (PostgreSQL: an
 * advisory lock per schema; SQLite: BEGIN IMMEDIATE), so several processes starting at once apply
 * each migration exactly once. Kysely's own Migrator is not used: it looks for its bookkeeping
 * tables by scanning every schema of the database, which confuses two services (or test runs)
 * sharing one PostgreSQL database in different schemas.
 */
export async function migrate(store: Store, onReport?: (migration: string, report: MigrationReport) => void): Promise<string[]> {
  return store.db.connection().execute(async (conn) => {
    if (store.dialect === 'postgres') {
      await sql`BEGIN`.execute(conn);
      await sql`SELECT pg_advisory_xact_lock(hashtext(current_schema() || '/custos-migrations'))`.execute(conn);
    } else await sql`BEGIN IMMEDIATE`.execute(conn);
    try {
      await sql`CREATE TABLE IF NOT EXISTS custos_migrations (name text PRIMARY KEY, applied_at text NOT NULL)`.execute(conn);
      const done = await sql<{ name: string }>`SELECT name FROM custos_migrations`.execute(conn);
      const applied = new Set(done.rows.map((r) => r.name));
      const ran: string[] = [];
      const reports: [string, MigrationReport][] = [];
      for (const [name, m] of Object.entries(MIGRATIONS)) {
        if (applied.has(name)) continue;
        const report = await m.up(conn as Kysely<unknown>, store.dialect);
        if (report !== undefined) reports.push([name, report]);
        await sql`INSERT INTO custos_migrations (name, applied_at) VALUES (${name}, ${new Date().toISOString()})`.execute(conn);
        ran.push(name);
      }
      await sql`COMMIT`.execute(conn);
      for (const [name, report] of reports) onReport?.(name, report);
      return ran;
    } catch (error) {
      await sql`ROLLBACK`.execute(conn).catch(() => undefined);
      throw error;
    }
  });
}

/** Runs `fn` with the database's notion of "now" unimportant; a cheap liveness probe. */
export async function ping(store: Store): Promise<void> {
  await sql`SELECT 1`.execute(store.db);
}
