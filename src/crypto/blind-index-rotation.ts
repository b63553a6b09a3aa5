import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Clock } from '../kernel/clock.ts';
import type { Dialect } from '../store/database.ts';
import type { Database } from '../store/schema.ts';
import { BLIND_INDEX_STATE, type BlindIndexKeys, type BlindIndexVersion, type IndexRebuildStep } from './blind-index.ts';
import type { KeyStore } from './key-store.ts';
import type { RootRing } from './keyring.ts';
import { insertVersion } from './service-keys.ts';

/** key_state row holding the target version of an unfinished rebuild. */
export const BLIND_INDEX_REBUILD = 'blind-index-rebuild';

export interface BlindIndexRotation {
  /** The new version, which alone is in force once the rotation is complete. */
  version: number;
  /** Whether a rotation killed earlier was resumed. */
  resumed: boolean;
  /** Vault records and identity accounts indexed under the new version by this run. */
  records: number;
  accounts: number;
  /** Versions destroyed at the end, and how many index rows under them went. */
  destroyed: number[];
  removedRows: number;
  /** Entries that failed to open: then nothing is destroyed, and the rotation stays unfinished. */
  failed: string[];
  complete: boolean;
}

type Rebuild = (after: string, limit: number, target: BlindIndexVersion) => Promise<IndexRebuildStep>;

/**
 * `custos keys rotate --key blind-index` (NIST SP 800-57 Pt. 1 §5.3: a new key, its predecessor
 * destroyed once nothing needs it): a new version of the blind-index key, every blind index rebuilt
 * under it online — the vault's searchable fields and identity's account-email index — and the old
 * version destroyed with its index rows.
 *
 * 1. One transaction adds the version, moves the `blind-index` state (a write that indexed under
 *    the old set alone stores nothing and indexes again) and notes the rebuild in `key_state`.
 *    From then on two versions are in force: writes index under both (identity: `email_index`
 *    keeps the old one, where uniqueness holds for every account, `email_index_next` gets the
 *    new), lookups consult both.
 * 2. Every record and account is indexed under the new version, in batches (records: a
 *    compare-and-swap on the record version, so a concurrent write is never lost).
 * 3. One transaction moves the state again, moves each account's new index into `email_index`
 *    and destroys the old key versions: from its commit only the new version is in force.
 * 4. The old versions' index rows are deleted in batches (no lookup computes their digests any
 *    more), and the note is removed.
 * On PostgreSQL, steps 1 and 3 lock `blind_indexes` in SHARE mode and update the state row, so
 * they wait for every write in flight, and writes after them see the new state. Killed at any
 * point and run again, it resumes from the note: steps 2 to 4 are safe to repeat.
 */
export async function rotateBlindIndex(
  deps: {
    db: Kysely<Database>;
    dialect: Dialect;
    ring: RootRing;
    clock: Clock;
    keys: KeyStore;
    blindIndex: BlindIndexKeys;
    records: Rebuild;
    accounts: Rebuild;
    /** Pause after each batch, at least this long and as long as the batch took (SQLite); 0: none. */
    giveWayMs: number;
  },
  batch: number,
  progress: (phase: 'records' | 'accounts' | 'cleanup', done: number) => void = () => undefined,
): Promise<BlindIndexRotation> {
  const { db, keys } = deps;
  /** A change of the versions in force: waits for the writes in flight, moves the state, empties every cache. */
  const change = <T>(body: (tx: Transaction<Database>) => Promise<T>) =>
    db.transaction().execute(async (tx) => {
      await sql`UPDATE key_state SET value = value + 1 WHERE name = ${BLIND_INDEX_STATE}`.execute(tx);
      if (deps.dialect === 'postgres') await sql`LOCK TABLE blind_indexes IN SHARE MODE`.execute(tx);
      const result = await body(tx);
      await keys.announce(tx);
      return result;
    });
  const versions = async (via: Kysely<Database> = db) =>
    (await via.selectFrom('service_keys').select('version').where('name', '=', 'blind-index').orderBy('version', 'desc').execute()).map((r) => r.version);

  const note = await db.selectFrom('key_state').select('value').where('name', '=', BLIND_INDEX_REBUILD).executeTakeFirst();
  const resumed = note !== undefined;
  let version: number;
  if (note === undefined) {
    version = await change(async (tx) => {
      const next = ((await versions(tx))[0] ?? 0) + 1;
      await insertVersion(tx, deps.ring, 'blind-index', next, randomBytes(32), deps.clock.now().toISOString());
      await tx.insertInto('key_state').values({ name: BLIND_INDEX_REBUILD, value: next }).execute();
      return next;
    });
  } else version = Number(note.value);
  const report: BlindIndexRotation = { version, resumed, records: 0, accounts: 0, destroyed: [], removedRows: 0, failed: [], complete: false };

  const pass = async (rebuild: Rebuild, target: BlindIndexVersion, phase: 'records' | 'accounts') => {
    let done = 0;
    for (let after = ''; ; ) {
      const started = performance.now();
      const step = await rebuild(after, batch, target);
      done += step.rebuilt;
      report.failed.push(...step.failed);
      progress(phase, done);
      if (step.next === undefined) return done;
      after = step.next;
      if (deps.giveWayMs > 0) await sleep(Math.max(deps.giveWayMs, performance.now() - started));
    }
  };
  // Killed after step 3 committed: only the new version is left; steps 2 and 3 are done.
  if ((await versions()).some((v) => v < version)) {
    const target = (await deps.blindIndex.reload()).versions.find((v) => v.version === version);
    if (target === undefined) throw new Error(`blind-index key v${version} is missing`);
    report.records = await pass(deps.records, target, 'records');
    for (let attempt = 0; ; attempt++) {
      report.accounts += await pass(deps.accounts, target, 'accounts');
      if (report.failed.length > 0) return report;
      const finished = await change(async (tx) => {
        // Accounts created by a process that had not yet seen the new version: index them first.
        if ((await tx.selectFrom('identity_accounts').select('id').where('email_index_next', 'is', null).limit(1).executeTakeFirst()) !== undefined) return false;
        await tx
          .updateTable('identity_accounts')
          .set((eb) => ({ email_index: eb.ref('email_index_next').$notNull(), email_index_next: null }))
          .where('email_index_next', 'is not', null)
          .execute();
        const old = await tx.selectFrom('service_keys').select('version').where('name', '=', 'blind-index').where('version', '<', version).execute();
        await tx.deleteFrom('service_keys').where('name', '=', 'blind-index').where('version', '<', version).execute();
        report.destroyed = old.map((r) => r.version);
        return true;
      });
      if (finished) break;
      if (attempt >= 3) throw new Error('accounts kept arriving without the new blind index');
    }
  }
  for (;;) {
    const rows = await db.selectFrom('blind_indexes').select('record_id').where('key_version', '<', version).limit(batch).execute();
    if (rows.length === 0) break;
    const result = await db
      .deleteFrom('blind_indexes')
      .where('key_version', '<', version)
      .where('record_id', 'in', [...new Set(rows.map((r) => r.record_id))])
      .executeTakeFirst();
    report.removedRows += Number(result.numDeletedRows);
    progress('cleanup', report.removedRows);
  }
  await db.deleteFrom('key_state').where('name', '=', BLIND_INDEX_REBUILD).execute();
  await deps.blindIndex.reload();
  report.complete = true;
  return report;
}
