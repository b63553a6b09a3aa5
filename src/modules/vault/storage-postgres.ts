import { CompiledQuery, type Kysely } from 'kysely';
import { BLIND_INDEX_STATE, BlindIndexMoved } from '../../crypto/blind-index.ts';
import type { KeyStore } from '../../crypto/key-store.ts';
import { fail } from '../../kernel/errors.ts';
import type { Store } from '../../store/database.ts';
import type { Database } from '../../store/schema.ts';
import { INSERT_COLUMNS, type AuditLog } from '../audit/service.ts';
import { VaultErrors } from './errors.ts';
import { commonQueries, updateKeys, type VaultStorage } from './storage.ts';

/** PostgreSQL text with `:name` parameters → `$n` text and a binder (one number per name). */
function named(text: string): { sql: string; bind: (values: Record<string, unknown>) => unknown[] } {
  const names: string[] = [];
  const sql = text.replace(/(?<!:):([a-z_]+)/g, (_m, name: string) => {
    let i = names.indexOf(name);
    if (i < 0) i = names.push(name) - 1;
    return `$${i + 1}`;
  });
  return {
    sql,
    bind: (values) =>
      names.map((n) => {
        if (!(n in values)) throw new Error(`no value for :${n}`);
        return values[n];
      }),
  };
}

/**
 * PostgreSQL: each write is ONE statement (data-modifying CTEs, atomic like a transaction), sent
 * as a named statement through Store.read: a create inserts the subject's new data key or checks
 * the parent, then the record, its blind indexes and its audit entry. An update reads and locks
 * the row in a transaction, then one statement writes the next record version, replaces its
 * blind indexes and inserts its audit entry. Every
 * later step selects FROM the one before, so when a guard refuses (a newer KEK exists, the parent
 * or record is missing, the row changed since it was read) nothing at all is written. A
 * transaction of separate statements cost six round trips, each on this process's CPU and the
 * database's.
 */
const AUDIT_VALUES = INSERT_COLUMNS.map((k) => (k === 'record_version' ? `:audit_${k}::integer` : `:audit_${k}`)).join(', ');
/** A write's blind indexes were computed under the versions still in force (null: it has none); src/crypto/blind-index.ts. */
const INDEX_GUARD = `(:index_state::bigint IS NULL OR EXISTS (SELECT 1 FROM key_state WHERE name = '${BLIND_INDEX_STATE}' AND value = :index_state::bigint))`;
const INDEX_ROWS = 'unnest(:index_fields::text[], :index_digests::text[], :index_versions::integer[]) AS t(field, digest, key_version)';
const PG_REST = `r AS (
    INSERT INTO records (id, collection, subject_id, parent_id, data, created_at, updated_at, version)
    SELECT :id, :collection, p.subject_id, :parent_id, :data, :at, :at, 1 FROM p WHERE ${INDEX_GUARD} RETURNING id),
  b AS (
    INSERT INTO blind_indexes (collection, field, digest, record_id, key_version)
    SELECT :collection, t.field, t.digest, r.id, t.key_version FROM r, ${INDEX_ROWS}),
  a AS (
    INSERT INTO audit_log (${INSERT_COLUMNS.join(', ')}) SELECT ${AUDIT_VALUES} FROM r)
  SELECT id FROM r`;
const CREATE_SUBJECT = named(`WITH k AS (
    INSERT INTO subject_keys (subject_id, kek_version, dek_version, wrapped, created_at)
    SELECT :subject_id, :kek_version::integer, 1, :wrapped, :at WHERE NOT EXISTS (SELECT 1 FROM keks WHERE version > :kek_version::integer) AND ${INDEX_GUARD}
    RETURNING subject_id),
  p AS (SELECT subject_id FROM k),
  ${PG_REST}`);
const CREATE_CHILD = named(`WITH p AS (SELECT subject_id FROM records WHERE id = :parent_id AND collection = 'customers'),
  ${PG_REST}`);
/**
 * The update: applied only if the row is still at the version it was read at (the caller read it
 * unlocked). The steps of one statement see the same snapshot, so an index row that stays (the
 * value did not change) is kept rather than deleted and inserted again. Only index rows this record
 * does not hold yet are inserted, and a conflict is never ignored: another customer's email makes
 * the unique index refuse the whole statement (uniqueness.ts answers 409).
 */
const UPDATE = named(`WITH r AS (
    UPDATE records SET data = :data, updated_at = :at, version = :version::integer
    WHERE id = :id AND collection = :collection AND version = :version::integer - 1 AND ${INDEX_GUARD} RETURNING id),
  t AS (SELECT * FROM ${INDEX_ROWS}),
  d AS (
    DELETE FROM blind_indexes WHERE record_id IN (SELECT id FROM r) AND collection = :collection AND field = ANY(:replaced::text[])
      AND (field, digest) NOT IN (SELECT field, digest FROM t)),
  b AS (
    INSERT INTO blind_indexes (collection, field, digest, record_id, key_version)
    SELECT :collection, t.field, t.digest, r.id, t.key_version FROM r, t
    WHERE NOT EXISTS (SELECT 1 FROM blind_indexes k WHERE k.record_id = r.id AND k.collection = :collection AND k.field = t.field AND k.digest = t.digest)),
  a AS (
    INSERT INTO audit_log (${INSERT_COLUMNS.join(', ')}) SELECT ${AUDIT_VALUES} FROM r)
  SELECT id FROM r`);
const RESEAL = named('UPDATE records SET data = :data WHERE id = :id AND version = :version::integer RETURNING id');

/** Most mints per create while KEK versions keep being added. */
const ATTEMPTS = 3;

export function createPostgresStorage(deps: { db: Kysely<Database>; read: Store['read']; keys: KeyStore; audit: AuditLog }): VaultStorage {
  const { db, read, keys, audit } = deps;
  const notFound: () => never = () => fail(VaultErrors.VAULT_NOT_FOUND, 'no customer with that id');
  const auditParams = (entry: Parameters<AuditLog['pendingRow']>[0], version: number) => {
    const row = audit.pendingRow({ ...entry, recordVersion: version });
    return Object.fromEntries(INSERT_COLUMNS.map((k) => [`audit_${k}`, row[k]]));
  };
  const indexParams = (w: { indexes: readonly { field: string; digest: string; key_version: number }[]; indexState?: number | undefined }) => ({
    index_fields: w.indexes.map((x) => x.field),
    index_digests: w.indexes.map((x) => x.digest),
    index_versions: w.indexes.map((x) => x.key_version),
    index_state: w.indexes.length > 0 ? (w.indexState ?? null) : null,
  });
  /** A write that stored nothing: BlindIndexMoved if its index guard is what refused it. */
  const checkIndexState = async (w: { indexes: readonly unknown[]; indexState?: number | undefined }, via: Pick<Kysely<Database>, 'selectFrom'> = db) => {
    if (w.indexes.length === 0 || w.indexState === undefined) return;
    const row = await via.selectFrom('key_state').select('value').where('name', '=', BLIND_INDEX_STATE).executeTakeFirst();
    if (Number(row?.value) !== w.indexState) throw new BlindIndexMoved();
  };

  return {
    ...commonQueries(db, read, 'postgres'),

    async create(r) {
      const params: Record<string, unknown> = {
        id: r.id,
        collection: r.collection,
        parent_id: r.parentId ?? null,
        at: r.at,
        ...indexParams(r),
        ...auditParams(r.entry, 1),
      };
      if (r.parentId !== undefined) {
        const dek = await keys.dekFor(db, r.parentId, false);
        if (dek === undefined) notFound();
        params.data = r.seal(dek);
        if ((await read(CREATE_CHILD.sql, CREATE_CHILD.bind(params))).length === 0) {
          await checkIndexState(r);
          notFound();
        }
        return;
      }
      for (let attempt = 1; ; attempt++) {
        const { dek, row } = await keys.mintDek(r.subjectId);
        Object.assign(params, { data: r.seal(dek), subject_id: r.subjectId, kek_version: row.kek_version, wrapped: row.wrapped });
        if ((await read(CREATE_SUBJECT.sql, CREATE_SUBJECT.bind(params))).length === 1) {
          keys.adopt(r.subjectId, dek);
          return;
        }
        await checkIndexState(r);
        // A key rotation added a KEK since this process last read the current version.
        if (attempt >= ATTEMPTS) throw new Error('the current KEK version kept changing during a create');
        keys.kekOutdated();
      }
    },

    async update(u) {
      // The row is locked for the transaction, so concurrent updates of one record queue instead of failing.
      await db.transaction().execute(async (tx) => {
        const row = await tx.selectFrom('records').selectAll().where('id', '=', u.id).where('collection', '=', u.collection).forUpdate().executeTakeFirst();
        if (row === undefined) notFound();
        const loaded = await updateKeys(keys, tx, row.subject_id, row.data);
        if (loaded === undefined) notFound();
        const version = row.version + 1;
        const params = {
          id: u.id,
          collection: u.collection,
          at: u.at,
          version,
          data: u.rewrite(row, loaded.keyOf, loaded.dek, version),
          replaced: u.replaced,
          ...indexParams(u),
          ...auditParams(u.entry, version),
        };
        const result = await tx.executeQuery<{ id: string }>(CompiledQuery.raw(UPDATE.sql, UPDATE.bind(params)));
        if (result.rows.length !== 1) {
          await checkIndexState(u, tx);
          throw new Error('a locked record changed during its update');
        }
      });
    },

    async reseal(id, version, data) {
      return (await read(RESEAL.sql, RESEAL.bind({ id, version, data }))).length === 1;
    },
  };
}
