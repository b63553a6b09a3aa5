import type SQLite from 'better-sqlite3';
import type { Kysely } from 'kysely';
import { BLIND_INDEX_STATE, BlindIndexMoved } from '../../crypto/blind-index.ts';
import type { KeyStore } from '../../crypto/key-store.ts';
import { fail } from '../../kernel/errors.ts';
import type { Store } from '../../store/database.ts';
import type { WriteBatcher } from '../../store/write-batch.ts';
import type { Database } from '../../store/schema.ts';
import { INSERT_COLUMNS, type AuditLog } from '../audit/service.ts';
import { VaultErrors } from './errors.ts';
import { commonQueries, updateKeys, type Row, type VaultStorage } from './storage.ts';

/**
 * SQLite: every write is a job of the store's write batch (write-batch.ts): the writes that
 * arrive together share one transaction and one fsync, each in its own savepoint, so a job that
 * throws leaves nothing behind. The statements are prepared once per connection. A new customer's
 * data key is minted before the job under the KEK version this process last read; the job inserts
 * nothing if a newer KEK exists, and the create mints again under it.
 */
const SQ = {
  subjectKey:
    'INSERT INTO subject_keys (subject_id, kek_version, dek_version, wrapped, created_at) SELECT ?, ?, 1, ?, ? WHERE NOT EXISTS (SELECT 1 FROM keks WHERE version > ?)',
  parent: "SELECT subject_id FROM records WHERE id = ? AND collection = 'customers'",
  record: 'INSERT INTO records (id, collection, subject_id, parent_id, data, created_at, updated_at, version) VALUES (?, ?, ?, ?, ?, ?, ?, 1)',
  row: 'SELECT * FROM records WHERE id = ? AND collection = ?',
  update: 'UPDATE records SET data = ?, updated_at = ?, version = ? WHERE id = ?',
  reseal: 'UPDATE records SET data = ? WHERE id = ? AND version = ?',
  index: 'INSERT INTO blind_indexes (collection, field, digest, record_id, key_version) VALUES (?, ?, ?, ?, ?)',
  indexState: `SELECT value FROM key_state WHERE name = '${BLIND_INDEX_STATE}'`,
  unindex: 'DELETE FROM blind_indexes WHERE record_id = ? AND collection = ? AND field = ?',
  audit: `INSERT INTO audit_log (${INSERT_COLUMNS.join(', ')}) VALUES (${INSERT_COLUMNS.map(() => '?').join(', ')})`,
};
type Prepared = Record<keyof typeof SQ, SQLite.Statement>;
/** The row an update reads first (Store.read) to load the keys it needs. */
const ROW = SQ.row;

/** A rotation added a KEK after this process read the current version: mint again. */
class KekMoved extends Error {}
/** Most mints per create while KEK versions keep being added. */
const MINT_ATTEMPTS = 3;

export function createSqliteStorage(deps: { db: Kysely<Database>; read: Store['read']; batch: WriteBatcher; keys: KeyStore; audit: AuditLog }): VaultStorage {
  const { db, read, batch, keys, audit } = deps;
  const prepared = new WeakMap<SQLite.Database, Prepared>();
  const statements = (sqlite: SQLite.Database): Prepared => {
    let p = prepared.get(sqlite);
    if (p === undefined) {
      p = Object.fromEntries(Object.entries(SQ).map(([k, text]) => [k, sqlite.prepare(text)])) as Prepared;
      prepared.set(sqlite, p);
    }
    return p;
  };
  const notFound: () => never = () => fail(VaultErrors.VAULT_NOT_FOUND, 'no customer with that id');
  /** In the write's transaction: its blind indexes were computed under the versions still in force. */
  const indexGuard = (st: Prepared, w: { indexes: readonly unknown[]; indexState?: number | undefined }) => {
    if (w.indexes.length > 0 && w.indexState !== undefined && Number((st.indexState.get() as { value: number } | undefined)?.value) !== w.indexState) throw new BlindIndexMoved();
  };

  return {
    ...commonQueries(db, read, 'sqlite'),

    async create(r) {
      const entry = audit.pendingRow({ ...r.entry, recordVersion: 1 });
      const auditValues = INSERT_COLUMNS.map((k) => entry[k]);
      const insert = (st: Prepared, data: string) => {
        indexGuard(st, r);
        st.record.run(r.id, r.collection, r.subjectId, r.parentId ?? null, data, r.at, r.at);
        for (const x of r.indexes) st.index.run(x.collection, x.field, x.digest, x.record_id, x.key_version);
        st.audit.run(...auditValues);
      };
      const { parentId } = r;
      if (parentId !== undefined) {
        const dek = await keys.dekFor(db, parentId, false);
        if (dek === undefined) notFound();
        const data = r.seal(dek);
        await batch.run((sqlite) => {
          const st = statements(sqlite);
          if (st.parent.get(parentId) === undefined) notFound();
          insert(st, data);
        });
        return;
      }
      for (let attempt = 1; ; attempt++) {
        const { dek, row } = await keys.mintDek(r.subjectId);
        const data = r.seal(dek);
        try {
          await batch.run((sqlite) => {
            const st = statements(sqlite);
            if (st.subjectKey.run(r.subjectId, row.kek_version, row.wrapped, r.at, row.kek_version).changes !== 1) throw new KekMoved();
            insert(st, data);
          });
          keys.adopt(r.subjectId, dek);
          return;
        } catch (error) {
          if (!(error instanceof KekMoved) || attempt >= MINT_ATTEMPTS) throw error;
          keys.kekOutdated();
        }
      }
    },

    async update(u) {
      const before = await read<Row>(ROW, [u.id, u.collection]);
      const row0 = before[0];
      if (row0 === undefined) notFound();
      const loaded = await updateKeys(keys, db, row0.subject_id, row0.data);
      if (loaded === undefined) notFound();
      const { dek, keyOf } = loaded;
      await batch.run((sqlite) => {
        const st = statements(sqlite);
        const row = st.row.get(u.id, u.collection) as Row | undefined;
        if (row === undefined) notFound();
        indexGuard(st, u);
        const version = row.version + 1;
        st.update.run(u.rewrite(row, keyOf, dek, version), u.at, version, u.id);
        for (const field of u.replaced) st.unindex.run(u.id, u.collection, field);
        for (const x of u.indexes) st.index.run(x.collection, x.field, x.digest, x.record_id, x.key_version);
        const entry = audit.pendingRow({ ...u.entry, recordVersion: version });
        st.audit.run(...INSERT_COLUMNS.map((k) => entry[k]));
      });
    },

    reseal: (id, version, data) => batch.run((sqlite) => statements(sqlite).reseal.run(data, id, version).changes === 1),
  };
}
