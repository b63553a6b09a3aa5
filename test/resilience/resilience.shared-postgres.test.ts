import { afterAll, describe, expect, it } from 'vitest';
import { testDatabase, TEST_DIALECT, type TestDatabase } from '../support/store.ts';
import { CHILD_TIMEOUT, childEnv, killChildren, newDatabase, rootKey, runCli } from './harness.ts';

/**
 * Two Custos deployments (or a deployment and anything else using Kysely migrations) in one
 * PostgreSQL database, each in its own schema (DATABASE_SCHEMA). Migrating the second schema must
 * not be confused by the first one's migration tables: start-up of a fresh deployment would fail
 * with 'relation "kysely_migration_lock" does not exist'. PostgreSQL only: schemas are its feature.
 */
describe.runIf(TEST_DIALECT === 'postgres')('PostgreSQL schemas side by side', { timeout: CHILD_TIMEOUT }, () => {
  const dbs: TestDatabase[] = [];
  afterAll(async () => {
    await killChildren();
    for (const db of dbs) await db.cleanup();
  });

  it('migrates a fresh schema while another schema of the same database is already migrated', async () => {
    const first = await newDatabase();
    dbs.push(first);
    const one = await runCli(['migrate'], childEnv(first, { CUSTOS_ROOT_KEY: rootKey() }));
    expect(one.code, one.stderr).toBe(0);

    const second = testDatabase();
    dbs.push(second);
    const two = await runCli(['migrate'], childEnv(second, { CUSTOS_ROOT_KEY: rootKey() }));
    expect(two.stderr).not.toContain('kysely_migration');
    expect(two.code).toBe(0);
    expect(two.stdout).toContain('up to date');
  });
});
