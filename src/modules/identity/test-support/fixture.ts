import { createSecretKey, randomBytes } from 'node:crypto';
import pg from 'pg';
import { fixedClock } from '../../../kernel/clock.ts';
import { Secret } from '../../../kernel/secret.ts';
import { migrate, openStore, type Store } from '../../../store/database.ts';
import { TEST_PG_URL, testStore } from '../../../../test/support/store.ts';
import { createAccountService } from '../account-service.ts';
import { deriveIdentityKeys } from '../keys.ts';
import { createPasswordService } from '../password-service.ts';

async function admin(url: string, statements: string[]): Promise<void> {
  const client = new pg.Client({ connectionString: url });
  await client.connect();
  try {
    for (const q of statements) await client.query(q);
  } finally {
    await client.end();
  }
}

/**
 * `testStore()`, with the PostgreSQL work-around of test/vault/helpers.ts: `migrate()` builds
 * Kysely's Migrator without `migrationTableSchema`, so Kysely finds its bookkeeping tables in any
 * other schema of the database (another test file running at the same time) and skips creating
 * them in this one ('relation "kysely_migration_lock" does not exist'). Until that is fixed, the
 * schema is prepared with those two tables first.
 */
async function isolatedStore(): Promise<Store> {
  const url = TEST_PG_URL;
  if (url === undefined) return testStore();
  const schema = `t_${randomBytes(6).toString('hex')}`;
  await admin(url, [
    `CREATE SCHEMA "${schema}"`,
    `CREATE TABLE "${schema}".kysely_migration (name varchar(255) NOT NULL PRIMARY KEY, timestamp varchar(255) NOT NULL)`,
    `CREATE TABLE "${schema}".kysely_migration_lock (id varchar(255) NOT NULL PRIMARY KEY, is_locked integer NOT NULL DEFAULT 0)`,
  ]);
  const drop = () => admin(url, [`DROP SCHEMA IF EXISTS "${schema}" CASCADE`]);
  try {
    const store = await openStore({ kind: 'postgres', url: new Secret(url), schema, poolSize: 5 });
    // Kysely's introspection also reads every other schema; one dropped by a neighbouring test at
    // that instant fails it with "schema … does not exist" (3F000). That is transient: try again.
    for (let attempt = 1; ; attempt++) {
      try {
        await migrate(store);
        break;
      } catch (error) {
        if ((error as { code?: string }).code === '3F000' && attempt < 10) continue;
        await store.close();
        throw error;
      }
    }
    return {
      ...store,
      async close() {
        try {
          await store.close();
        } finally {
          await drop();
        }
      },
    };
  } catch (error) {
    await drop();
    throw error;
  }
}

/**
 * A migrated test database (SQLite, or PostgreSQL when DATABASE_URL says so), a clock that only
 * moves when told, fresh random keys, and the account and password services on top.
 */
export async function identityFixture(start = new Date('2026-03-02T10:00:00.000Z')) {
  const store = await isolatedStore();
  const clock = fixedClock(start);
  const keys = deriveIdentityKeys({ base: createSecretKey(randomBytes(32)), blindIndex: createSecretKey(randomBytes(32)) });
  const passwords = createPasswordService({ policy: { contextWords: ['Acme Outdoor'] } });
  const accounts = createAccountService({ db: store.db, clock, keys, passwords });
  let n = 0;
  return {
    store,
    db: store.db,
    dialect: store.dialect,
    clock,
    keys,
    passwords,
    accounts,
    /** A customer account with a unique email; with a password when one is given. */
    async account(options: { realm?: 'customer' | 'staff'; password?: string } = {}) {
      n += 1;
      const { account } = await accounts.create({
        realm: options.realm ?? 'customer',
        email: `person${n}.${randomBytes(3).toString('hex')}@example.com`,
        ...(options.password === undefined ? {} : { password: new Secret(options.password) }),
      });
      return account;
    },
    async close() {
      await passwords.close();
      await store.close();
    },
  };
}

export type IdentityFixture = Awaited<ReturnType<typeof identityFixture>>;
