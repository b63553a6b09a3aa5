import type SQLite from 'better-sqlite3';
import type { Kysely } from 'kysely';

/**
 * Group commit for writes on SQLite. better-sqlite3 is synchronous and the store runs with
 * synchronous=FULL, so every COMMIT waits for an fsync with the event loop stopped; one
 * transaction per write makes that wait the cost of every write. Here the writes that arrive
 * together run as jobs inside ONE transaction, each in its own savepoint: a job that throws is
 * rolled back alone and its caller gets the error; the others commit together, and each caller's
 * promise resolves only once that COMMIT is durable. Jobs are synchronous functions over the raw
 * connection, run while Kysely's connection is held, so no other query lands inside the batch.
 */
export type WriteJob<T> = (sqlite: SQLite.Database) => T;

export interface WriteBatcher {
  run<T>(job: WriteJob<T>): Promise<T>;
}

interface Waiting {
  job: WriteJob<unknown>;
  resolve: (value: unknown) => void;
  reject: (error: unknown) => void;
}

export function createWriteBatcher<DB>(db: Kysely<DB>, sqlite: SQLite.Database, maxBatch = 256): WriteBatcher {
  let queue: Waiting[] = [];
  let scheduled = false;

  async function flush(): Promise<void> {
    const batch = queue.length <= maxBatch ? queue : queue.slice(0, maxBatch);
    queue = queue.length <= maxBatch ? [] : queue.slice(maxBatch);
    const outcomes: { ok: boolean; value: unknown }[] = [];
    try {
      await db.connection().execute(async () => {
        sqlite.exec('BEGIN IMMEDIATE');
        try {
          for (const w of batch) {
            sqlite.exec('SAVEPOINT job');
            try {
              outcomes.push({ ok: true, value: w.job(sqlite) });
              sqlite.exec('RELEASE job');
            } catch (error) {
              sqlite.exec('ROLLBACK TO job');
              sqlite.exec('RELEASE job');
              outcomes.push({ ok: false, value: error });
            }
          }
          sqlite.exec('COMMIT');
        } catch (error) {
          if (sqlite.inTransaction) sqlite.exec('ROLLBACK');
          throw error;
        }
      });
    } catch (error) {
      for (const w of batch) w.reject(error);
      return;
    }
    batch.forEach((w, i) => {
      const o = outcomes[i]!;
      if (o.ok) w.resolve(o.value);
      else w.reject(o.value);
    });
  }

  function schedule(): void {
    if (scheduled || queue.length === 0) return;
    scheduled = true;
    // At the end of this turn of the event loop: every write parsed in it joins the batch.
    setImmediate(() => {
      void flush().finally(() => {
        scheduled = false;
        schedule();
      });
    });
  }

  return {
    run<T>(job: WriteJob<T>): Promise<T> {
      return new Promise<T>((resolve, reject) => {
        queue.push({ job, resolve: resolve as (value: unknown) => void, reject });
        schedule();
      });
    },
  };
}
