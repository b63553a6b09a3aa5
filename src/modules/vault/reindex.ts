import type { Kysely } from 'kysely';
import type { Dialect } from '../../store/database.ts';
import type { Database } from '../../store/schema.ts';
import type { IndexRow } from './storage.ts';

/**
 * One batch of a blind-index rebuild (`custos keys rotate --key blind-index`,
 * src/crypto/blind-index-rotation.ts): each record's rows under the new key version are replaced by
 * those computed from the record as it was read, if its record version is still the one read
 * (compare-and-swap; PostgreSQL: FOR SHARE, so an update waits for the batch). One transaction per
 * batch. Returns the ids of records written meanwhile, for the caller to read and index again.
 */
export async function replaceIndexes(
  db: Kysely<Database>,
  dialect: Dialect,
  keyVersion: number,
  records: readonly { id: string; version: number; rows: readonly IndexRow[] }[],
): Promise<string[]> {
  if (records.length === 0) return [];
  return db.transaction().execute(async (tx) => {
    let q = tx.selectFrom('records').select(['id', 'version']).where('id', 'in', records.map((r) => r.id));
    if (dialect === 'postgres') q = q.forShare();
    const now = new Map((await q.execute()).map((r) => [r.id, r.version]));
    const moved: string[] = [];
    const same = records.filter((r) => {
      if (now.get(r.id) === r.version) return true;
      // Erased meanwhile (no row): nothing to index.
      if (now.has(r.id)) moved.push(r.id);
      return false;
    });
    if (same.length === 0) return moved;
    await tx.deleteFrom('blind_indexes').where('key_version', '=', keyVersion).where('record_id', 'in', same.map((r) => r.id)).execute();
    const rows = same.flatMap((r) => r.rows);
    // Bounded statements (SQLite allows 32 766 parameters; five per row).
    for (let i = 0; i < rows.length; i += 1000) await tx.insertInto('blind_indexes').values(rows.slice(i, i + 1000)).execute();
    return moved;
  });
}
