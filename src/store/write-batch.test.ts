import SQLite from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { testStore, TEST_DIALECT } from '../../test/support/store.ts';

/**
 * The SQLite write batch: writes that arrive together share one transaction, each in a
 * savepoint. Tried here: a failing job among good ones (it alone is rolled back, its caller alone
 * gets the error), a Kysely transaction in progress (no batch statement lands inside it, and it
 * does not see the batch half-done), and what another connection sees (all of a batch or none).
 */
describe.skipIf(TEST_DIALECT !== 'sqlite')('SQLite write batch', () => {
  let store: Awaited<ReturnType<typeof testStore>>;
  beforeEach(async () => {
    store = await testStore();
  });
  afterEach(async () => store.close());

  const insert = (id: string) => (sqlite: SQLite.Database) =>
    sqlite.prepare("INSERT INTO records (id, collection, subject_id, parent_id, data, created_at, updated_at) VALUES (?, 'customers', ?, NULL, '{}', 'x', 'x')").run(id, id).changes;
  const ids = async () => (await store.db.selectFrom('records').select('id').orderBy('id').execute()).map((r) => r.id);

  it('commits the jobs of one turn together; a failing job is rolled back alone and only its caller sees the error', async () => {
    const failing = (sqlite: SQLite.Database) => {
      insert('cus_bad')(sqlite);
      throw new Error('refused');
    };
    const outcomes = await Promise.allSettled([
      store.batch!.run(insert('cus_a')),
      store.batch!.run(failing),
      store.batch!.run(insert('cus_b')),
      store.batch!.run(insert('cus_a')), // duplicate key: a database error, for this job only
      store.batch!.run(insert('cus_c')),
    ]);
    expect(outcomes.map((o) => o.status)).toEqual(['fulfilled', 'rejected', 'fulfilled', 'rejected', 'fulfilled']);
    expect((outcomes[1] as PromiseRejectedResult).reason).toEqual(new Error('refused'));
    expect(String((outcomes[3] as PromiseRejectedResult).reason)).toMatch(/UNIQUE/);
    expect(await ids()).toEqual(['cus_a', 'cus_b', 'cus_c']);
  });

  it('never runs inside a Kysely transaction that is waiting between statements', async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const tx = store.db.transaction().execute(async (t) => {
      await t.insertInto('records').values({ id: 'cus_tx', collection: 'customers', subject_id: 'cus_tx', parent_id: null, data: '{}', created_at: 'x', updated_at: 'x' }).execute();
      await gate;
      throw new Error('roll back');
    });
    const job = store.batch!.run(insert('cus_job'));
    await new Promise((r) => setTimeout(r, 20));
    release();
    await expect(tx).rejects.toThrow('roll back');
    await job;
    // Had the job run inside the transaction, its row would have been rolled back with it.
    expect(await ids()).toEqual(['cus_job']);
  });

  it('another connection sees all of a batch or none of it', async () => {
    const file = store.test.database.kind === 'sqlite' ? store.test.database.file : '';
    const other = new SQLite(file, { readonly: true });
    try {
      const seen: number[] = [];
      const jobs = Array.from({ length: 20 }, (_, i) =>
        store.batch!.run((sqlite) => {
          insert(`cus_${String(i).padStart(2, '0')}`)(sqlite);
          seen.push((other.prepare('SELECT count(*) AS n FROM records').get() as { n: number }).n);
        }),
      );
      await Promise.all(jobs);
      expect(seen.every((n) => n === 0)).toBe(true);
      expect((other.prepare('SELECT count(*) AS n FROM records').get() as { n: number }).n).toBe(20);
    } finally {
      other.close();
    }
  });
});
