import type { KeyObject } from 'node:crypto';
import type SQLite from 'better-sqlite3';
import { sql, type Kysely } from 'kysely';
import { blindIndex } from '../../crypto/blind-index.ts';
import type { KeyStore } from '../../crypto/key-store.ts';
import type { Clock } from '../../kernel/clock.ts';
import { AppError, fail } from '../../kernel/errors.ts';
import { ID_PREFIX, isId, newId } from '../../kernel/ids.ts';
import type { Dialect, Store } from '../../store/database.ts';
import type { Database } from '../../store/schema.ts';
import { INSERT_COLUMNS, type AuditEntry, type AuditLog, type AuditRecord } from '../audit/service.ts';
import { normaliseEmail, normalisePhone, type CollectionDef, type Inventory, type StoredValue } from '../inventory/index.ts';
import { PolicyErrors } from '../policy/errors.ts';
import type { Actor, Decision, PolicyService } from '../policy/service.ts';
import { applyWrite, parseStored, reveal, type StoredData } from './codec.ts';
import { VaultErrors } from './errors.ts';

/**
 * The vault: customer profiles, addresses and purchase history, stored encrypted per subject,
 * written only as the inventory declares, and read only through the policy decision point with
 * an audit entry that is durable before any value leaves (DESIGN.md, data flow of a read).
 */
export interface CallContext {
  readonly actor: Actor;
  /** The stated purpose (`Custos-Purpose`); required for reads, recorded for writes. */
  readonly purpose: string | undefined;
  readonly requestId: string;
}

export type Collection = 'customers' | 'addresses' | 'orders';
export type Values = Record<string, StoredValue | undefined>;
type Row = Database['records'];

export interface RecordView {
  id: string;
  created_at: string;
  updated_at: string;
  [field: string]: StoredValue | RecordView[] | undefined;
}

export interface VaultService {
  create(ctx: CallContext, collection: Collection, parentId: string | undefined, values: Values): Promise<{ id: string }>;
  updateCustomer(ctx: CallContext, id: string, values: Values): Promise<{ id: string; updated_at: string }>;
  readCustomer(ctx: CallContext, id: string): Promise<RecordView>;
  findCustomers(ctx: CallContext, by: { email?: string | undefined; phone?: string | undefined }): Promise<RecordView[]>;
  listOrders(ctx: CallContext, customerId: string, page: { limit: number; cursor?: string | undefined }): Promise<{ data: RecordView[]; next_cursor: string | null }>;
  readOrder(ctx: CallContext, id: string): Promise<RecordView>;
  /** Who touched this customer's data, when, why and which fields — never values. */
  accessLog(ctx: CallContext, customerId: string, page: { limit: number; before?: number | undefined }): Promise<AuditRecord[]>;
}

const PREFIX: Record<Collection, string> = { customers: ID_PREFIX.customer, addresses: ID_PREFIX.address, orders: ID_PREFIX.order };

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

/** Most records one lookup returns (customers sharing a value, with their addresses). */
const LOOKUP_LIMIT = 1000;

const byId = (rows: Row[]): Row[] => (rows.length < 2 ? rows : rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)));

export function createVaultService(deps: {
  db: Kysely<Database>;
  dialect: Dialect;
  /** Hot-path reads (Store.read): prepared once, outside any write transaction. */
  read: Store['read'];
  /** SQLite: group-committed writes (Store.batch). */
  batch?: Store['batch'];
  keys: KeyStore;
  blindIndexKey: KeyObject;
  inventory: Inventory;
  policy: PolicyService;
  audit: AuditLog;
  clock: Clock;
  phoneDefaultCountry?: string | undefined;
}): VaultService {
  const { db, keys, inventory, policy, audit, clock } = deps;
  const col = (name: Collection): CollectionDef => inventory.collections.get(name)!;
  const searchable = (c: CollectionDef) => [...c.fields.values()].filter((f) => f.protection === 'searchable');
  const { read } = deps;

  // The statements of every read, built and compiled once (Kysely would build them per call).
  // They leave the order to the caller: on SQLite an ORDER BY over the IN list costs a temporary
  // B-tree, three times the cost of the lookup itself, for a handful of rows sorted here instead.
  const CUSTOMER_ROWS = db
    .selectFrom('records')
    .selectAll()
    .where('subject_id', '=', '')
    .where('collection', 'in', ['customers', 'addresses'])
    .compile().sql;
  // An IN subquery rather than a join: measured on SQLite, a third of the join's time.
  const LOOKUP_ROWS = db
    .selectFrom('records')
    .selectAll()
    .where('subject_id', 'in', (eb) =>
      eb.selectFrom('blind_indexes').select('record_id').where('collection', '=', 'customers').where('field', '=', '').where('digest', '=', ''),
    )
    .where('collection', 'in', ['customers', 'addresses'])
    // A literal: a bound LIMIT made SQLite's statement two to four times slower.
    .limit(sql.lit(LOOKUP_LIMIT))
    .compile().sql;
  const ORDER_ROW = db.selectFrom('records').selectAll().where('id', '=', '').where('collection', '=', 'orders').compile().sql;

  /**
   * The stated purpose, checked. A caller stating a declared purpose it is not scoped to is an
   * invalid access attempt: it is recorded (outcome `denied`, no field names, no values) before
   * the refusal goes out (PCI DSS 4.0.1 10.2.1.4), and lands in the customer's access log when the
   * request named one. Missing or undeclared purposes are malformed requests, refused without an
   * entry: an undeclared purpose is caller text and is never written to the log.
   */
  type Attempt = Omit<AuditEntry, 'actor' | 'outcome' | 'purpose' | 'requestId'>;
  async function purposeFor<T>(ctx: CallContext, attempt: Attempt, check: () => T | Promise<T>): Promise<T> {
    try {
      return await check();
    } catch (error) {
      if (error instanceof AppError && error.code === PolicyErrors.POLICY_PURPOSE_NOT_ALLOWED.code)
        await audit.append({ ...attempt, actor: ctx.actor.ref, purpose: ctx.purpose ?? null, outcome: 'denied', requestId: ctx.requestId });
      throw error;
    }
  }
  const stated = (ctx: CallContext, attempt: Attempt) => purposeFor(ctx, attempt, () => policy.checkPurpose(ctx.actor, ctx.purpose));

  function checkId(kind: Collection, id: string): void {
    if (!isId(PREFIX[kind], id)) fail(VaultErrors.VAULT_ID_MALFORMED, `not a well-formed ${kind.slice(0, -1)} id`);
  }

  function indexValue(fieldType: string, value: StoredValue): string | undefined {
    if (typeof value !== 'string') return undefined;
    if (fieldType === 'email') return normaliseEmail(value);
    // Validated writes already hold E.164; parsing it again costs more than the rest of the index.
    if (fieldType === 'phone') return /^\+[1-9]\d{5,14}$/.test(value) ? value : normalisePhone(value, deps.phoneDefaultCountry);
    return value.normalize('NFC');
  }

  function indexRows(c: CollectionDef, recordId: string, values: Values): { rows: Database['blind_indexes'][]; replaced: string[] } {
    const rows: Database['blind_indexes'][] = [];
    const replaced: string[] = [];
    for (const f of searchable(c)) {
      const value = values[f.name];
      if (value === undefined) continue;
      replaced.push(f.name);
      const normalised = value === null ? undefined : indexValue(f.type, value);
      if (normalised === undefined) continue;
      rows.push({ collection: c.name, field: f.name, digest: blindIndex(deps.blindIndexKey, c.name, f.name, normalised), record_id: recordId });
    }
    return { rows, replaced };
  }

  async function writeIndexes(tx: Kysely<Database>, c: CollectionDef, recordId: string, values: Values, replace: boolean) {
    const { rows, replaced } = indexRows(c, recordId, values);
    if (replace && replaced.length > 0)
      await tx.deleteFrom('blind_indexes').where('record_id', '=', recordId).where('collection', '=', c.name).where('field', 'in', replaced).execute();
    if (rows.length > 0) await tx.insertInto('blind_indexes').values(rows).execute();
  }

  /** Decide, audit (durable before anything leaves: fail closed), then open and mask. */
  async function release(ctx: CallContext, action: string, subjectId: string, rows: readonly Row[], recordId: string | null): Promise<RecordView[]> {
    const purpose = policy.checkPurpose(ctx.actor, ctx.purpose);
    const decisions = new Map<string, Decision>();
    const touched = new Set<string>();
    const parsed = rows.map((row) => parseStored(row.data));
    for (const [i, row] of rows.entries()) {
      let decision = decisions.get(row.collection);
      if (decision === undefined) {
        decision = await policy.decide(ctx.actor, purpose, subjectId, col(row.collection as Collection));
        decisions.set(row.collection, decision);
      }
      const data = parsed[i]!;
      for (const name of decision.keys())
        if (name in data.e || name in data.p) touched.add(row.collection === 'customers' ? name : `${row.collection}.${name}`);
    }
    const first = rows[0];
    // Why nothing was released for the purpose: no consent in force (e.g. vault.read.no_consent).
    const withheld = [...decisions.values()].find((d) => d.withheld !== undefined)?.withheld;
    await audit.append({
      actor: ctx.actor.ref,
      action: withheld === undefined ? action : `${action}.${withheld}`,
      subjectId,
      collection: first?.collection ?? null,
      recordId,
      fields: [...touched].sort(),
      purpose,
      outcome: 'success',
      requestId: ctx.requestId,
    });
    const dek = await keys.dekFor(db, subjectId, false);
    return rows.map((row, i) => {
      const c = col(row.collection as Collection);
      const fields = reveal(dek, c, row.id, parsed[i]!, decisions.get(row.collection)!);
      const view: RecordView = { id: row.id, created_at: row.created_at, updated_at: row.updated_at, ...fields };
      if (row.collection !== 'customers') view.customer_id = row.subject_id;
      return view;
    });
  }

  function customerView(views: RecordView[]): RecordView {
    const customer = views.find((v) => v.id.startsWith(`${ID_PREFIX.customer}_`))!;
    const { customer_id: _ignored, ...rest } = customer;
    return { ...rest, addresses: views.filter((v) => v !== customer).map(({ customer_id: _c, ...a }) => a) } as RecordView;
  }


  /**
   * PostgreSQL: a create is ONE statement (data-modifying CTEs, atomic like a transaction): the
   * subject's new data key or the parent check, the record, its blind indexes and its audit entry.
   * A transaction of separate statements cost six round trips, each on this process's CPU and the
   * database's. Every later insert selects FROM the one before, so when the key's guard refuses
   * (a newer KEK exists) or the parent is missing, nothing at all is inserted.
   */
  const PG_REST = `r AS (
      INSERT INTO records (id, collection, subject_id, parent_id, data, created_at, updated_at)
      SELECT :id, :collection, p.subject_id, :parent_id, :data, :at, :at FROM p RETURNING id),
    b AS (
      INSERT INTO blind_indexes (collection, field, digest, record_id)
      SELECT :collection, t.field, t.digest, r.id FROM r, unnest(:index_fields::text[], :index_digests::text[]) AS t(field, digest)),
    a AS (
      INSERT INTO audit_log (${INSERT_COLUMNS.join(', ')}) SELECT ${INSERT_COLUMNS.map((k) => `:audit_${k}`).join(', ')} FROM r)
    SELECT id FROM r`;
  const PG_CREATE_SUBJECT = named(`WITH k AS (
      INSERT INTO subject_keys (subject_id, kek_version, dek_version, wrapped, created_at)
      SELECT :subject_id, :kek_version::integer, 1, :wrapped, :at WHERE NOT EXISTS (SELECT 1 FROM keks WHERE version > :kek_version::integer)
      RETURNING subject_id),
    p AS (SELECT subject_id FROM k),
    ${PG_REST}`);
  const PG_CREATE_CHILD = named(`WITH p AS (SELECT subject_id FROM records WHERE id = :parent_id AND collection = 'customers'),
    ${PG_REST}`);

  async function createPg(ctx: CallContext, c: CollectionDef, id: string, parentId: string | undefined, values: Values, at: string): Promise<void> {
    const subjectId = parentId ?? id;
    const entry = audit.pendingRow({
      actor: ctx.actor.ref,
      action: 'vault.create',
      subjectId,
      collection: c.name,
      recordId: id,
      fields: Object.keys(values).filter((k) => values[k] !== undefined).sort(),
      purpose: ctx.purpose ?? null,
      outcome: 'success',
      requestId: ctx.requestId,
    });
    const { rows: indexes } = indexRows(c, id, values);
    const params: Record<string, unknown> = {
      id,
      collection: c.name,
      parent_id: parentId ?? null,
      at,
      index_fields: indexes.map((r) => r.field),
      index_digests: indexes.map((r) => r.digest),
    };
    for (const k of INSERT_COLUMNS) params[`audit_${k}`] = entry[k];
    if (parentId !== undefined) {
      const dek = await keys.dekFor(db, parentId, false);
      if (dek === undefined) fail(VaultErrors.VAULT_NOT_FOUND, 'no customer with that id');
      params.data = JSON.stringify(applyWrite(dek, c, id, { e: {}, p: {} }, values));
      const inserted = await read<{ id: string }>(PG_CREATE_CHILD.sql, PG_CREATE_CHILD.bind(params));
      if (inserted.length === 0) fail(VaultErrors.VAULT_NOT_FOUND, 'no customer with that id');
      return;
    }
    for (let attempt = 0; ; attempt++) {
      const { dek, row } = await keys.mintDek(subjectId);
      params.data = JSON.stringify(applyWrite(dek, c, id, { e: {}, p: {} }, values));
      Object.assign(params, { subject_id: subjectId, kek_version: row.kek_version, wrapped: row.wrapped });
      const inserted = await read<{ id: string }>(PG_CREATE_SUBJECT.sql, PG_CREATE_SUBJECT.bind(params));
      if (inserted.length === 1) {
        keys.adopt(subjectId, dek);
        return;
      }
      // A key rotation added a KEK since this process last read the current version.
      keys.kekOutdated();
      if (attempt >= 2) throw new Error('the current KEK version kept changing during a create');
    }
  }

  /**
   * SQLite: a create is a job of the store's write batch (write-batch.ts): the writes that arrive
   * together share one transaction and one fsync, each in its own savepoint. The statements are
   * prepared once on the connection; the data key is minted before, under the KEK version this
   * process last read, and the job refuses (inserting nothing) if a newer KEK exists.
   */
  const SQ = {
    subjectKey:
      'INSERT INTO subject_keys (subject_id, kek_version, dek_version, wrapped, created_at) SELECT ?, ?, 1, ?, ? WHERE NOT EXISTS (SELECT 1 FROM keks WHERE version > ?)',
    parent: "SELECT subject_id FROM records WHERE id = ? AND collection = 'customers'",
    record: 'INSERT INTO records (id, collection, subject_id, parent_id, data, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
    index: 'INSERT INTO blind_indexes (collection, field, digest, record_id) VALUES (?, ?, ?, ?)',
    audit: `INSERT INTO audit_log (${INSERT_COLUMNS.join(', ')}) VALUES (${INSERT_COLUMNS.map(() => '?').join(', ')})`,
  };
  type Prepared = Record<keyof typeof SQ, SQLite.Statement>;
  const prepared = new WeakMap<SQLite.Database, Prepared>();
  const statements = (sqlite: SQLite.Database): Prepared => {
    let p = prepared.get(sqlite);
    if (p === undefined) {
      p = Object.fromEntries(Object.entries(SQ).map(([k, text]) => [k, sqlite.prepare(text)])) as Prepared;
      prepared.set(sqlite, p);
    }
    return p;
  };
  class KekMoved extends Error {}

  async function createSqlite(batch: NonNullable<Store['batch']>, ctx: CallContext, c: CollectionDef, id: string, parentId: string | undefined, values: Values, at: string): Promise<void> {
    const subjectId = parentId ?? id;
    const entry = audit.pendingRow({
      actor: ctx.actor.ref,
      action: 'vault.create',
      subjectId,
      collection: c.name,
      recordId: id,
      fields: Object.keys(values).filter((k) => values[k] !== undefined).sort(),
      purpose: ctx.purpose ?? null,
      outcome: 'success',
      requestId: ctx.requestId,
    });
    const { rows: indexes } = indexRows(c, id, values);
    const auditValues = INSERT_COLUMNS.map((k) => entry[k]);
    const insertRest = (st: Prepared, data: StoredData) => {
      st.record.run(id, c.name, subjectId, parentId ?? null, JSON.stringify(data), at, at);
      for (const r of indexes) st.index.run(r.collection, r.field, r.digest, r.record_id);
      st.audit.run(...auditValues);
    };
    if (parentId !== undefined) {
      const dek = await keys.dekFor(db, parentId, false);
      if (dek === undefined) fail(VaultErrors.VAULT_NOT_FOUND, 'no customer with that id');
      const data = applyWrite(dek, c, id, { e: {}, p: {} }, values);
      await batch.run((sqlite) => {
        const st = statements(sqlite);
        if (st.parent.get(parentId) === undefined) fail(VaultErrors.VAULT_NOT_FOUND, 'no customer with that id');
        insertRest(st, data);
      });
      return;
    }
    for (let attempt = 0; ; attempt++) {
      const { dek, row } = await keys.mintDek(subjectId);
      const data = applyWrite(dek, c, id, { e: {}, p: {} }, values);
      try {
        await batch.run((sqlite) => {
          const st = statements(sqlite);
          if (st.subjectKey.run(subjectId, row.kek_version, row.wrapped, at, row.kek_version).changes !== 1) throw new KekMoved();
          insertRest(st, data);
        });
        keys.adopt(subjectId, dek);
        return;
      } catch (error) {
        if (!(error instanceof KekMoved)) throw error;
        // A key rotation added a KEK since this process last read the current version.
        keys.kekOutdated();
        if (attempt >= 2) throw new Error('the current KEK version kept changing during a create');
      }
    }
  }

  return {
    async create(ctx, collection, parentId, values) {
      if (parentId !== undefined) checkId('customers', parentId);
      const c = col(collection);
      const now = clock.now();
      const id = newId(PREFIX[collection], now.getTime());
      const subjectId = parentId ?? id;
      // Checks a stated purpose (API keys may write without one), then the guards.
      await purposeFor(ctx, { action: 'vault.create', subjectId: parentId ?? null, collection }, () => policy.authorize(ctx.actor, ctx.purpose, subjectId));
      const at = now.toISOString();
      if (deps.dialect === 'postgres' || deps.batch !== undefined) {
        try {
          if (deps.batch !== undefined) await createSqlite(deps.batch, ctx, c, id, parentId, values, at);
          else await createPg(ctx, c, id, parentId, values, at);
          return { id };
        } catch (error) {
          // Nothing was stored. Which part failed (the audit log, say) is not told apart in one
          // statement or batch job: the same write as separate statements runs and names it.
          if (error instanceof AppError) throw error;
        }
      }
      await db.transaction().execute(async (tx) => {
        if (parentId !== undefined) {
          const parent = await tx.selectFrom('records').select('id').where('id', '=', parentId).where('collection', '=', 'customers').executeTakeFirst();
          if (parent === undefined) fail(VaultErrors.VAULT_NOT_FOUND, 'no customer with that id');
        }
        const dek = await keys.dekFor(tx, subjectId, parentId === undefined ? 'new' : false);
        if (dek === undefined) fail(VaultErrors.VAULT_NOT_FOUND, 'no customer with that id');
        const data = applyWrite(dek, c, id, { e: {}, p: {} }, values);
        await tx
          .insertInto('records')
          .values({ id, collection, subject_id: subjectId, parent_id: parentId ?? null, data: JSON.stringify(data), created_at: at, updated_at: at })
          .execute();
        await writeIndexes(tx, c, id, values, false);
        await audit.appendInTx(tx, {
          actor: ctx.actor.ref,
          action: 'vault.create',
          subjectId,
          collection,
          recordId: id,
          fields: Object.keys(values).filter((k) => values[k] !== undefined).sort(),
          purpose: ctx.purpose ?? null,
          outcome: 'success',
          requestId: ctx.requestId,
        });
      });
      return { id };
    },

    async updateCustomer(ctx, id, values) {
      checkId('customers', id);
      await purposeFor(ctx, { action: 'vault.update', subjectId: id, collection: 'customers', recordId: id }, () => policy.authorize(ctx.actor, ctx.purpose, id));
      const c = col('customers');
      const at = clock.now().toISOString();
      await db.transaction().execute(async (tx) => {
        let q = tx.selectFrom('records').select(['data']).where('id', '=', id).where('collection', '=', 'customers');
        if (deps.dialect === 'postgres') q = q.forUpdate();
        const row = await q.executeTakeFirst();
        if (row === undefined) fail(VaultErrors.VAULT_NOT_FOUND, 'no customer with that id');
        const dek = await keys.dekFor(tx, id, false);
        if (dek === undefined) fail(VaultErrors.VAULT_NOT_FOUND, 'no customer with that id');
        const data: StoredData = applyWrite(dek, c, id, parseStored(row.data), values);
        await tx.updateTable('records').set({ data: JSON.stringify(data), updated_at: at }).where('id', '=', id).execute();
        await writeIndexes(tx, c, id, values, true);
        await audit.appendInTx(tx, {
          actor: ctx.actor.ref,
          action: 'vault.update',
          subjectId: id,
          collection: 'customers',
          recordId: id,
          fields: Object.keys(values).filter((k) => values[k] !== undefined).sort(),
          purpose: ctx.purpose ?? null,
          outcome: 'success',
          requestId: ctx.requestId,
        });
      });
      return { id, updated_at: at };
    },

    async readCustomer(ctx, id) {
      checkId('customers', id);
      await stated(ctx, { action: 'vault.read', subjectId: id, collection: 'customers', recordId: id });
      const rows = byId(await read<Row>(CUSTOMER_ROWS, [id, 'customers', 'addresses']));
      if (!rows.some((r) => r.id === id)) fail(VaultErrors.VAULT_NOT_FOUND, 'no customer with that id');
      return customerView(await release(ctx, 'vault.read', id, rows, id));
    },

    async findCustomers(ctx, by) {
      // Which customer was sought is not resolved for a refused caller, nor is the value recorded.
      await stated(ctx, { action: 'vault.lookup', collection: 'customers' });
      const given = (['email', 'phone'] as const).filter((k) => by[k] !== undefined);
      if (given.length !== 1) fail(VaultErrors.VAULT_LOOKUP_INVALID, 'look up by exactly one of email or phone');
      const field = given[0]!;
      const c = col('customers');
      const def = c.fields.get(field);
      if (def === undefined || def.protection !== 'searchable') fail(VaultErrors.VAULT_LOOKUP_INVALID, `${field} is not searchable in this inventory`);
      // A lookup tells whether a value belongs to a customer: only purposes that may see the field may ask.
      const purpose = ctx.purpose!;
      if (def.purposes[purpose] === undefined)
        fail(VaultErrors.VAULT_LOOKUP_NOT_ALLOWED, `the stated purpose may not use ${field}, so it may not look customers up by it`);
      const normalised = indexValue(def.type, by[field]!);
      if (normalised === undefined || normalised.length === 0) fail(VaultErrors.VAULT_LOOKUP_INVALID, `not a well-formed ${field}`);
      const digest = blindIndex(deps.blindIndexKey, 'customers', field, normalised);
      const rows = byId(await read<Row>(LOOKUP_ROWS, ['customers', field, digest, 'customers', 'addresses']));
      const bySubject = new Map<string, Row[]>();
      for (const row of rows) bySubject.set(row.subject_id, [...(bySubject.get(row.subject_id) ?? []), row]);
      const out: RecordView[] = [];
      for (const [subjectId, subjectRows] of bySubject) {
        if (!subjectRows.some((r) => r.id === subjectId)) continue;
        // Consent-based uses are decided per customer: without consent the match is not revealed.
        if (!(await policy.decide(ctx.actor, purpose, subjectId, c)).has(field)) continue;
        out.push(customerView(await release(ctx, 'vault.lookup', subjectId, subjectRows, subjectId)));
      }
      return out;
    },

    async listOrders(ctx, customerId, page) {
      checkId('customers', customerId);
      await stated(ctx, { action: 'vault.read', subjectId: customerId, collection: 'orders' });
      if (page.cursor !== undefined) checkId('orders', page.cursor);
      const exists = await db.selectFrom('records').select('id').where('id', '=', customerId).where('collection', '=', 'customers').executeTakeFirst();
      if (exists === undefined) fail(VaultErrors.VAULT_NOT_FOUND, 'no customer with that id');
      let q = db.selectFrom('records').selectAll().where('subject_id', '=', customerId).where('collection', '=', 'orders');
      if (page.cursor !== undefined) q = q.where('id', '<', page.cursor);
      const rows = await q.orderBy('id', 'desc').limit(page.limit + 1).execute();
      const more = rows.length > page.limit;
      const slice = more ? rows.slice(0, page.limit) : rows;
      const data = slice.length === 0 ? [] : await release(ctx, 'vault.read', customerId, slice, null);
      return { data, next_cursor: more ? (slice.at(-1)?.id ?? null) : null };
    },

    async readOrder(ctx, id) {
      checkId('orders', id);
      await stated(ctx, { action: 'vault.read', collection: 'orders', recordId: id });
      const [row] = await read<Row>(ORDER_ROW, [id, 'orders']);
      if (row === undefined) fail(VaultErrors.VAULT_NOT_FOUND, 'no order with that id');
      const [view] = await release(ctx, 'vault.read', row.subject_id, [row], id);
      return view!;
    },

    async accessLog(ctx, customerId, page) {
      checkId('customers', customerId);
      const purpose = await stated(ctx, { action: 'audit.read', subjectId: customerId, collection: 'customers', recordId: customerId });
      const exists = await db.selectFrom('records').select('id').where('id', '=', customerId).where('collection', '=', 'customers').executeTakeFirst();
      if (exists === undefined) fail(VaultErrors.VAULT_NOT_FOUND, 'no customer with that id');
      await policy.authorize(ctx.actor, purpose, customerId);
      await audit.append({
        actor: ctx.actor.ref,
        action: 'audit.read',
        subjectId: customerId,
        collection: 'customers',
        recordId: customerId,
        fields: [],
        purpose,
        outcome: 'success',
        requestId: ctx.requestId,
      });
      return audit.forSubject(customerId, page);
    },
  };
}
