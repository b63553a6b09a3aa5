import { afterAll, describe, expect, it } from 'vitest';
import { TEST_DIALECT, type TestDatabase } from '../support/store.ts';
import { CHILD_TIMEOUT, childEnv, killChildren, newDatabase, rootKey, runCli } from './harness.ts';
import { addKyselyMigrationTables, rawDb } from './raw-db.ts';

/**
 * Several deployments in one PostgreSQL database, each in its own schema (DATABASE_SCHEMA), next
 * to another application that uses Kysely's migrator: migrating one schema must neither look at
 * nor touch the others, and concurrent migrations (two nodes starting at once) must both succeed.
 * A fresh deployment once failed to start here with 'relation "kysely_migration_lock" does not
 * exist'. PostgreSQL only: schemas are its feature.
 */
describe.runIf(TEST_DIALECT === 'postgres')('PostgreSQL schemas side by side', { timeout: CHILD_TIMEOUT }, () => {
  const dbs: TestDatabase[] = [];
  afterAll(async () => {
    await killChildren();
    for (const db of dbs) await db.cleanup();
  });

  it('migrates fresh schemas, at once and twice over, beside a schema holding Kysely migration tables', async () => {
    const neighbour = await newDatabase();
    const first = await newDatabase();
    const second = await newDatabase();
    dbs.push(neighbour, first, second);
    await addKyselyMigrationTables(neighbour);
    const firstEnv = childEnv(first, { CUSTOS_ROOT_KEY: rootKey() });
    const secondEnv = childEnv(second, { CUSTOS_ROOT_KEY: rootKey() });

    const runs = await Promise.all([runCli(['migrate'], firstEnv), runCli(['migrate'], firstEnv), runCli(['migrate'], secondEnv)]);
    for (const r of runs) {
      expect(r.stderr).not.toContain('kysely_migration');
      expect(r.code, r.stderr).toBe(0);
      expect(r.stdout).toContain('up to date');
    }

    const tables = async (db: TestDatabase) => {
      const raw = await rawDb(db);
      try {
        return await raw.tables();
      } finally {
        await raw.close();
      }
    };
    for (const db of [first, second]) expect(await tables(db)).toEqual(expect.arrayContaining(['records', 'audit_log', 'subject_keys', 'keks']));
    // The neighbour is left as it was.
    expect(await tables(neighbour)).toEqual(['kysely_migration', 'kysely_migration_lock']);
  });
});
