import type { Kysely } from 'kysely';
import { blindIndex, BlindIndexMoved, digestsOf, type BlindIndexKeys, type BlindIndexVersion, type IndexRebuildStep } from '../../crypto/blind-index.ts';
import type { Dek, KeyStore } from '../../crypto/key-store.ts';
import type { Clock } from '../../kernel/clock.ts';
import { AppError, fail } from '../../kernel/errors.ts';
import { ID_PREFIX, isId, newId } from '../../kernel/ids.ts';
import type { Dialect, Store } from '../../store/database.ts';
import type { Database } from '../../store/schema.ts';
import type { AuditEntry, AuditLog, AuditRecord } from '../audit/service.ts';
import type { SignedTreeHead } from '../audit/tree-head.ts';
import type { InclusionProofView } from '../audit/tree-store.ts';
import { normaliseEmail, normalisePhone, type CollectionDef, type Inventory, type StoredValue } from '../inventory/index.ts';
import { PolicyErrors } from '../policy/errors.ts';
import type { Actor, Decision, PolicyService, SubjectFacts } from '../policy/service.ts';
import { applyWrite, holdsField, integrityFailure, isLegacy, openRecord, parseStored, reveal, sealRecord, sealedUnder, type OpenedData, type RecordPlace, type StoredData } from './codec.ts';
import { createPostgresStorage } from './storage-postgres.ts';
import { createSqliteStorage } from './storage-sqlite.ts';
import type { Row, VaultStorage } from './storage.ts';
import { replaceIndexes } from './reindex.ts';
import { VaultErrors } from './errors.ts';
import { isUniqueViolation, withUniqueness } from './uniqueness.ts';

/**
 * The vault: customer profiles, addresses and purchase history, stored encrypted per subject,
 * written only as the inventory declares, and read only through the policy decision point with
 * an audit entry that is durable before any value leaves (DESIGN.md, data flow of a read).
 */
export interface CallContext {
  readonly actor: Actor;
  /** The stated purpose (`Custos-Purpose`); required for reads; a write states one or goes through all of an API key's. */
  readonly purpose: string | undefined;
  readonly requestId: string;
}

export type Collection = 'customers' | 'addresses' | 'orders';
export type Values = Record<string, StoredValue | undefined>;

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
  /** The customer's access log, newest first, each entry with its inclusion proof against the newest signed tree head. */
  accessLog(ctx: CallContext, customerId: string, page: { limit: number; before?: number | undefined }): Promise<AccessLogPage>;
  /**
   * One page of a customer's records of `collection`, by id after `after`, for their access or
   * portability export (GDPR Art. 15(3), 20): each opened with exactly the fields the inventory
   * marks `export: true`. Only the `rights` purpose reads this way; each page is audited as
   * `vault.export` (fail closed) before anything is opened.
   */
  exportPage(ctx: CallContext, customerId: string, collection: Collection, after: string | undefined, limit: number): Promise<RecordView[]>;
  /** The customer record holding this email, by its blind index (uniqueness.ts); nothing is opened. */
  customerIdByEmail(email: string): Promise<string | undefined>;
  /** The customer record whose searchable text field `field` (such as `shopify_customer_id`) holds `value`, by its blind index; nothing is opened. */
  customerIdBy(field: string, value: string): Promise<string | undefined>;
  /** The customer's email alone, in clear, for the stated purpose; audited as a read of `email`. */
  customerEmail(ctx: CallContext, id: string): Promise<string | undefined>;
  /**
   * One step of the re-seal job (reseal.ts): the records after `after` (by id, up to `limit`) that
   * are in the per-field format or sealed under another data key than `target` names, sealed again
   * under it; each as a compare-and-swap on the record version, re-read when a write landed first.
   */
  resealBatch(after: string, limit: number, target: SealTarget): Promise<ResealStep>;
  /** Whether the store is not yet marked re-sealed (the re-seal job has work or has not run). */
  resealPending(): Promise<boolean>;
  /** Marks the store re-sealed if no per-field record is left (from then on that format is refused); returns whether it did. */
  completeReseal(): Promise<boolean>;
  /** Each record's id and version, by id, for `audit verify --records`. */
  recordVersions(after: string, limit: number): Promise<{ id: string; version: number }[]>;
  /**
   * One step of a blind-index rebuild: the records after `after` (by id, up to `limit`), opened,
   * their searchable fields indexed under `target` (replacing that version's rows), each as a
   * compare-and-swap on the record version, read again when a write landed first.
   */
  reindexBatch(after: string, limit: number, target: BlindIndexVersion): Promise<IndexRebuildStep>;
}

/** An access-log page: entries with their proofs (null while an entry waits for the next signed head), and that head. */
export interface AccessLogPage {
  head: SignedTreeHead | null;
  entries: (AuditRecord & { proof: InclusionProofView | null })[];
}

/** The data key to seal a subject's records under (undefined: the subject has none; left as is). */
export type SealTarget = (subjectId: string) => Promise<Dek | undefined>;
export interface ResealStep {
  /** The last id examined; undefined when the scan reached the end. */
  next: string | undefined;
  examined: number;
  resealed: number;
  /** Records that failed to open (altered): left as they are and named by id. */
  failed: string[];
}

/** The one purpose a customer's records are read for their export (the rights process, GDPR Art. 15, 20). */
export const EXPORT_PURPOSE = 'rights';

const PREFIX: Record<Collection, string> = { customers: ID_PREFIX.customer, addresses: ID_PREFIX.address, orders: ID_PREFIX.order };

/** The fields a write sets or clears (undefined: left as is), by name. */
const written = (values: Values): string[] => Object.keys(values).filter((k) => values[k] !== undefined).sort();

const byId = (rows: Row[]): Row[] => (rows.length < 2 ? rows : rows.sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)));

export function createVaultService(deps: {
  db: Kysely<Database>;
  dialect: Dialect;
  /** Hot-path reads (Store.read): prepared once, outside any write transaction. */
  read: Store['read'];
  /** SQLite: group-committed writes (Store.batch). */
  batch?: Store['batch'];
  keys: KeyStore;
  /** The blind-index key versions in force (src/crypto/blind-index.ts). */
  blindIndex: BlindIndexKeys;
  inventory: Inventory;
  policy: PolicyService;
  audit: AuditLog;
  clock: Clock;
  phoneDefaultCountry?: string | undefined;
}): VaultService {
  const { db, keys, inventory, policy, audit, clock } = deps;
  const storage: VaultStorage =
    deps.dialect === 'postgres'
      ? createPostgresStorage({ db, read: deps.read, keys, audit })
      : createSqliteStorage({ db, read: deps.read, batch: sqliteBatch(deps.batch), keys, audit });
  const col = (name: Collection): CollectionDef => inventory.collections.get(name)!;
  const searchable = (c: CollectionDef) => [...c.fields.values()].filter((f) => f.protection === 'searchable');
  /** Per collection, the fields the inventory marks for the customer's export, each released in clear. */
  const exportable = new Map<string, ReadonlyMap<string, 'clear'>>(
    [...inventory.collections.values()].map((c) => [c.name, new Map([...c.fields.values()].filter((f) => f.export).map((f) => [f.name, 'clear' as const]))]),
  );

  /**
   * The stated purpose, checked. A caller stating a declared purpose it is not scoped to is an
   * invalid access attempt: it is recorded (outcome `denied`, no field names, no values) before
   * the refusal goes out (PCI DSS 4.0.1 10.2.1.4), and lands in the customer's access log when the
   * request named one. So is a write of fields no purpose it writes through may write: the entry
   * names the refused fields and the purposes tried, never a value. Missing or undeclared purposes
   * are malformed requests, refused without an entry: an undeclared purpose is caller text and is
   * never written to the log.
   */
  type Attempt = Omit<AuditEntry, 'actor' | 'outcome' | 'purpose' | 'requestId' | 'fields'>;
  async function purposeFor<T>(ctx: CallContext, attempt: Attempt, check: () => T | Promise<T>): Promise<T> {
    try {
      return await check();
    } catch (error) {
      if (!(error instanceof AppError)) throw error;
      const base = { ...attempt, actor: ctx.actor.ref, outcome: 'denied' as const, requestId: ctx.requestId };
      if (error.code === PolicyErrors.POLICY_PURPOSE_NOT_ALLOWED.code) await audit.append({ ...base, purpose: ctx.purpose ?? null });
      if (error.code === PolicyErrors.POLICY_WRITE_NOT_ALLOWED.code) {
        const { fields, purposes } = error.details as { fields: string[]; purposes: string[] };
        await audit.append({ ...base, fields: [...fields].sort(), purpose: purposeList(purposes) });
      }
      throw error;
    }
  }
  /** Purposes as one audit `purpose` value: a comma-separated list, or null for none. */
  const purposeList = (purposes: readonly string[]): string | null => (purposes.length > 0 ? purposes.join(',') : null);

  /** The audit entry of a successful write: the fields it set or cleared (names only) and the purposes it went through. */
  const writeEntry = (ctx: CallContext, action: string, subjectId: string, collection: string, recordId: string, fields: readonly string[], purposes: readonly string[]): AuditEntry => ({
    actor: ctx.actor.ref,
    action,
    subjectId,
    collection,
    recordId,
    fields,
    purpose: purposeList(purposes),
    outcome: 'success',
    requestId: ctx.requestId,
  });
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

  /** The blind-index rows of the searchable fields `values` sets, under each of `versions`, and the fields they replace. */
  function indexRows(c: CollectionDef, recordId: string, values: Values, versions: readonly BlindIndexVersion[]): { indexes: Database['blind_indexes'][]; replaced: string[] } {
    const rows: Database['blind_indexes'][] = [];
    const replaced: string[] = [];
    for (const f of searchable(c)) {
      const value = values[f.name];
      if (value === undefined) continue;
      replaced.push(f.name);
      const normalised = value === null ? undefined : indexValue(f.type, value);
      if (normalised === undefined) continue;
      for (const v of versions) rows.push({ collection: c.name, field: f.name, digest: blindIndex(v.key, c.name, f.name, normalised), record_id: recordId, key_version: v.version });
    }
    return { indexes: rows, replaced };
  }

  /**
   * A write's one statement (PostgreSQL) or batch job (SQLite) that failed for a reason other
   * than the request (the database, or the audit log it writes in the same step): nothing was
   * stored, and the caller is told so; the cause goes to the log with the request.
   */
  async function stored(write: Promise<void>): Promise<void> {
    try {
      await write;
    } catch (error) {
      // A unique index refusing the write is the caller's conflict: uniqueness.ts answers it with a 409.
      if (error instanceof AppError || isUniqueViolation(error) || error instanceof BlindIndexMoved) throw error;
      throw new AppError(VaultErrors.VAULT_WRITE_UNAVAILABLE.code, VaultErrors.VAULT_WRITE_UNAVAILABLE.status, 'the write could not be stored; nothing was stored', {
        cause: error,
      });
    }
  }

  /** Whether per-field records are still read: until the store is marked re-sealed (read once per process). */
  let legacyRead: Promise<boolean> | undefined;
  const legacyAllowed = (): Promise<boolean> => {
    const pending = (legacyRead ??= storage.resealed().then((done) => !done));
    pending.catch(() => {
      if (legacyRead === pending) legacyRead = undefined;
    });
    return pending;
  };
  const placeOf = (row: Row): RecordPlace => ({ collection: row.collection, id: row.id, subjectId: row.subject_id, version: row.version });
  /**
   * The data key a stored record was sealed under (its version is in the stored text). `seen`: the
   * key generation read with the row (SQLite), for the key store's cache check.
   */
  async function keyFor(subjectId: string, data: StoredData, seen?: number): Promise<Dek | undefined> {
    const version = sealedUnder(data);
    if (version === undefined) return keys.dekFor(db, subjectId, false, seen);
    const dek = await keys.dekVersion(db, subjectId, version, seen);
    if (dek !== undefined) return dek;
    // An erased subject has no key at all; a subject with keys but not this version names a wrong one.
    if ((await keys.dekFor(db, subjectId, false, seen)) !== undefined) throw integrityFailure();
    return undefined;
  }
  /** Opened rows, so that a lookup's check and its release open each record once. */
  const openedRows = new WeakMap<Row, OpenedData>();
  async function openRow(row: Row, data: StoredData = parseStored(row.data)): Promise<OpenedData> {
    let opened = openedRows.get(row);
    if (opened === undefined) {
      opened = openRecord(await keyFor(row.subject_id, data, row.key_generation), placeOf(row), data, await legacyAllowed());
      openedRows.set(row, opened);
    }
    return opened;
  }

  /**
   * Whether the customer record really holds the looked-up value: its field opened and normalised
   * as the query was. A blind-index row pointing at another record (edited or misplaced) fails.
   */
  async function holds(row: Row, field: string, fieldType: string, normalised: string): Promise<boolean> {
    const data = await openRow(row);
    const value: StoredValue | undefined = Object.hasOwn(data.p, field) ? data.p[field] : data.e[field];
    return value !== undefined && value !== null && indexValue(fieldType, value) === normalised;
  }

  /** What the row's statement read about its subject for the policy (undefined: not read with it; the policy asks). */
  const factsOf = (row: Row | undefined): SubjectFacts | undefined => (row?.restriction === undefined ? undefined : { restriction: row.restriction });

  /** Decide, audit (durable before anything leaves: fail closed), then open and mask. */
  async function release(ctx: CallContext, action: string, subjectId: string, rows: readonly Row[], recordId: string | null, decided?: ReadonlyMap<string, Decision>): Promise<RecordView[]> {
    const purpose = policy.checkPurpose(ctx.actor, ctx.purpose);
    // `decided`: decisions the caller already took for this subject and purpose (a lookup decides on the customer first).
    const decisions = new Map<string, Decision>(decided);
    const touched = new Set<string>();
    const parsed = rows.map((row) => parseStored(row.data));
    const facts = factsOf(rows[0]);
    for (const [i, row] of rows.entries()) {
      let decision = decisions.get(row.collection);
      if (decision === undefined) {
        decision = await policy.decide(ctx.actor, purpose, subjectId, col(row.collection as Collection), facts);
        decisions.set(row.collection, decision);
      }
      const data = parsed[i]!;
      for (const name of decision.keys())
        if (holdsField(data, name)) touched.add(row.collection === 'customers' ? name : `${row.collection}.${name}`);
    }
    // The collection of the record the request named (a customer read with addresses is a customers read).
    const requested = (recordId === null ? undefined : rows.find((r) => r.id === recordId)) ?? rows[0];
    // Why nothing was released for the purpose: no consent in force (e.g. vault.read.no_consent).
    const withheld = [...decisions.values()].find((d) => d.withheld !== undefined)?.withheld;
    await audit.append({
      actor: ctx.actor.ref,
      action: withheld === undefined ? action : `${action}.${withheld}`,
      subjectId,
      collection: requested?.collection ?? null,
      recordId,
      fields: [...touched].sort(),
      purpose,
      outcome: 'success',
      requestId: ctx.requestId,
    });
    const views: RecordView[] = [];
    for (const [i, row] of rows.entries()) {
      const opened = await openRow(row, parsed[i]!);
      const fields = reveal(col(row.collection as Collection), opened, decisions.get(row.collection)!);
      const view: RecordView = { id: row.id, created_at: row.created_at, updated_at: row.updated_at, ...fields };
      if (row.collection !== 'customers') view.customer_id = row.subject_id;
      views.push(view);
    }
    return views;
  }

  function customerView(views: RecordView[]): RecordView {
    const customer = views.find((v) => v.id.startsWith(`${ID_PREFIX.customer}_`))!;
    const { customer_id: _ignored, ...rest } = customer;
    return { ...rest, addresses: views.filter((v) => v !== customer).map(({ customer_id: _c, ...a }) => a) } as RecordView;
  }


  return withUniqueness(deps, {
    async create(ctx, collection, parentId, values) {
      if (parentId !== undefined) checkId('customers', parentId);
      const c = col(collection);
      const now = clock.now();
      const id = newId(PREFIX[collection], now.getTime());
      const subjectId = parentId ?? id;
      const fields = written(values);
      const purposes = await purposeFor(ctx, { action: 'vault.create', subjectId: parentId ?? null, collection }, () =>
        policy.authorizeWrite(ctx.actor, ctx.purpose, subjectId, collection, fields),
      );
      const at = now.toISOString();
      const opened = applyWrite(c, { e: {}, p: {} }, values);
      await deps.blindIndex.writing((set) => stored(storage.create({
        id,
        collection,
        subjectId,
        parentId,
        at,
        indexes: indexRows(c, id, values, set.versions).indexes,
        indexState: set.state,
        seal: (dek) => sealRecord(dek, { collection, id, subjectId, version: 1 }, opened),
        entry: writeEntry(ctx, 'vault.create', subjectId, collection, id, fields, purposes),
      })));
      return { id };
    },

    async updateCustomer(ctx, id, values) {
      checkId('customers', id);
      const fields = written(values);
      const purposes = await purposeFor(ctx, { action: 'vault.update', subjectId: id, collection: 'customers', recordId: id }, () =>
        policy.authorizeWrite(ctx.actor, ctx.purpose, id, 'customers', fields),
      );
      const c = col('customers');
      const at = clock.now().toISOString();
      const legacy = await legacyAllowed();
      await deps.blindIndex.writing((set) => stored(storage.update({
        id,
        collection: 'customers',
        at,
        ...indexRows(c, id, values, set.versions),
        indexState: set.state,
        rewrite: (row, keyOf, dek, version) => {
          const data = parseStored(row.data);
          const sealed = sealedUnder(data);
          const from = sealed === undefined ? undefined : keyOf(sealed);
          // Re-sealed under another key between loading the keys and this write: refused, nothing stored.
          if (sealed !== undefined && from === undefined) throw new Error('the record was re-sealed during the update');
          const current = openRecord(from, placeOf(row), data, legacy);
          return sealRecord(dek, { ...placeOf(row), version }, applyWrite(c, current, values));
        },
        entry: writeEntry(ctx, 'vault.update', id, 'customers', id, fields, purposes),
      })));
      return { id, updated_at: at };
    },

    async readCustomer(ctx, id) {
      checkId('customers', id);
      await stated(ctx, { action: 'vault.read', subjectId: id, collection: 'customers', recordId: id });
      const rows = byId(await storage.customerRows(id, clock.now().toISOString()));
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
      const use = def.purposes.get(purpose);
      if (use === undefined || use.access === 'none')
        fail(VaultErrors.VAULT_LOOKUP_NOT_ALLOWED, `the stated purpose may not use ${field}, so it may not look customers up by it`);
      const normalised = indexValue(def.type, by[field]!);
      if (normalised === undefined || normalised.length === 0) fail(VaultErrors.VAULT_LOOKUP_INVALID, `not a well-formed ${field}`);
      const now = clock.now().toISOString();
      const rows = byId(await deps.blindIndex.lookup((set) => storage.lookupRows(field, digestsOf(set, 'customers', field, normalised), now), (found) => found[0]?.key_generation));
      const bySubject = new Map<string, Row[]>();
      for (const row of rows) bySubject.set(row.subject_id, [...(bySubject.get(row.subject_id) ?? []), row]);
      const out: RecordView[] = [];
      for (const [subjectId, subjectRows] of bySubject) {
        const customer = subjectRows.find((r) => r.id === subjectId);
        if (customer === undefined) continue;
        // Consent-based uses are decided per customer: without consent the match is not revealed.
        // A customer a guard refuses (a staff member without an elevation for them, say) is left out
        // like a non-match, so the lookup's answer never tells that the value belongs to someone;
        // the guard records its refusal.
        const decision = await policy.decide(ctx.actor, purpose, subjectId, c, factsOf(customer)).catch((error: unknown) => {
          if (error instanceof AppError) return undefined;
          throw error;
        });
        if (decision === undefined || !decision.has(field)) continue;
        if (!(await holds(customer, field, def.type, normalised))) {
          await audit.append({
            actor: ctx.actor.ref,
            action: 'vault.integrity.blind_index_mismatch',
            subjectId,
            collection: 'customers',
            recordId: subjectId,
            fields: [field],
            purpose,
            outcome: 'failure',
            requestId: ctx.requestId,
          });
          continue;
        }
        out.push(customerView(await release(ctx, 'vault.lookup', subjectId, subjectRows, subjectId, new Map([['customers', decision]]))));
      }
      return out;
    },

    async listOrders(ctx, customerId, page) {
      checkId('customers', customerId);
      await stated(ctx, { action: 'vault.read', subjectId: customerId, collection: 'orders' });
      if (page.cursor !== undefined) checkId('orders', page.cursor);
      if (!(await storage.customerExists(customerId))) fail(VaultErrors.VAULT_NOT_FOUND, 'no customer with that id');
      const rows = await storage.orderRows(customerId, page.cursor, page.limit + 1);
      const more = rows.length > page.limit;
      const slice = more ? rows.slice(0, page.limit) : rows;
      const data = slice.length === 0 ? [] : await release(ctx, 'vault.read', customerId, slice, null);
      return { data, next_cursor: more ? (slice.at(-1)?.id ?? null) : null };
    },

    async readOrder(ctx, id) {
      checkId('orders', id);
      await stated(ctx, { action: 'vault.read', collection: 'orders', recordId: id });
      const row = await storage.orderRow(id, clock.now().toISOString());
      if (row === undefined) fail(VaultErrors.VAULT_NOT_FOUND, 'no order with that id');
      const [view] = await release(ctx, 'vault.read', row.subject_id, [row], id);
      return view!;
    },

    async accessLog(ctx, customerId, page) {
      checkId('customers', customerId);
      const purpose = await stated(ctx, { action: 'audit.read', subjectId: customerId, collection: 'customers', recordId: customerId });
      if (!(await storage.customerExists(customerId))) fail(VaultErrors.VAULT_NOT_FOUND, 'no customer with that id');
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
      const entries = await audit.forSubject(customerId, page);
      const { head, proofs } = await audit.proofs(entries.map((e) => e.id));
      return { head, entries: entries.map((e) => ({ ...e, proof: proofs.get(e.id) ?? null })) };
    },

    async exportPage(ctx, customerId, collection, after, limit) {
      checkId('customers', customerId);
      const purpose = await stated(ctx, { action: 'vault.export', subjectId: customerId, collection });
      if (purpose !== EXPORT_PURPOSE) fail(PolicyErrors.POLICY_PURPOSE_NOT_ALLOWED, `records are exported only for ${EXPORT_PURPOSE}`);
      await policy.authorize(ctx.actor, purpose, customerId);
      const c = col(collection);
      const rows = await storage.exportRows(customerId, collection, after ?? '', limit);
      if (rows.length === 0) return [];
      const released = exportable.get(collection)!;
      await audit.append({
        actor: ctx.actor.ref,
        action: 'vault.export',
        subjectId: customerId,
        collection,
        recordId: null,
        fields: [...released.keys()].sort(),
        purpose,
        outcome: 'success',
        requestId: ctx.requestId,
      });
      const views: RecordView[] = [];
      for (const row of rows) {
        const fields = reveal(c, await openRow(row), released);
        const view: RecordView = { id: row.id, created_at: row.created_at, updated_at: row.updated_at, ...fields };
        if (collection !== 'customers') view.customer_id = row.subject_id;
        views.push(view);
      }
      return views;
    },

    async customerEmail(ctx, id) {
      checkId('customers', id);
      const customers = col('customers');
      const purpose = policy.checkPurpose(ctx.actor, ctx.purpose);
      await policy.authorize(ctx.actor, purpose, id);
      const row = await storage.recordRow(id, clock.now().toISOString());
      if (row === undefined || row.collection !== 'customers') fail(VaultErrors.VAULT_NOT_FOUND, 'no customer with that id');
      if ((await policy.decide(ctx.actor, purpose, id, customers, factsOf(row))).get('email') !== 'clear')
        fail(VaultErrors.VAULT_LOOKUP_NOT_ALLOWED, 'the stated purpose may not see email in clear');
      await audit.append({ actor: ctx.actor.ref, action: 'vault.read', subjectId: id, collection: 'customers', recordId: id, fields: ['email'], purpose, outcome: 'success', requestId: ctx.requestId });
      const data = parseStored(row.data);
      const opened = openRecord(await keyFor(id, data, row.key_generation), placeOf(row), data, await legacyAllowed());
      const value = opened.p.email ?? opened.e.email;
      return typeof value === 'string' ? value : undefined;
    },

    async resealBatch(after, limit, target) {
      const rows = await storage.scan(after, limit);
      const step: ResealStep = { next: rows.at(-1)?.id, examined: rows.length, resealed: 0, failed: [] };
      for (const first of rows) {
        let row: Row | undefined = first;
        while (row !== undefined) {
          const data = parseStored(row.data);
          const to = await target(row.subject_id);
          if (to === undefined || (!isLegacy(data) && sealedUnder(data) === to.version)) break;
          let opened: OpenedData;
          try {
            opened = openRecord(await keyFor(row.subject_id, data), placeOf(row), data, true);
          } catch (error) {
            if (!(error instanceof AppError)) throw error;
            step.failed.push(row.id);
            break;
          }
          if (await storage.reseal(row.id, row.version, sealRecord(to, placeOf(row), opened))) {
            step.resealed += 1;
            break;
          }
          // A write landed since the row was read: it wins; the row is read again.
          row = await storage.recordRow(row.id, clock.now().toISOString());
        }
      }
      return step;
    },

    async resealPending() {
      return !(await storage.resealed());
    },

    async completeReseal() {
      if (await storage.legacyLeft()) return false;
      await storage.markResealed();
      legacyRead = Promise.resolve(false);
      return true;
    },

    async recordVersions(after, limit) {
      return storage.versions(after, limit);
    },

    async reindexBatch(after, limit, target) {
      const scanned = await storage.scan(after, limit);
      const step: IndexRebuildStep = { next: scanned.at(-1)?.id, examined: scanned.length, rebuilt: 0, failed: [] };
      let pending = scanned;
      while (pending.length > 0) {
        const records: { id: string; version: number; rows: Database['blind_indexes'][] }[] = [];
        for (const row of pending) {
          const c = inventory.collections.get(row.collection);
          if (c === undefined || searchable(c).length === 0) continue;
          let opened: OpenedData;
          try {
            opened = await openRow(row);
          } catch (error) {
            if (!(error instanceof AppError)) throw error;
            step.failed.push(row.id);
            continue;
          }
          const values = Object.fromEntries(searchable(c).map((f) => [f.name, Object.hasOwn(opened.p, f.name) ? opened.p[f.name] : opened.e[f.name]]));
          records.push({ id: row.id, version: row.version, rows: indexRows(c, row.id, values, [target]).indexes });
        }
        const moved = await replaceIndexes(db, deps.dialect, target.version, records);
        step.rebuilt += records.length - moved.length;
        // Written since they were read: read again (the write indexed its own fields under every version in force).
        pending = (await Promise.all(moved.map((id) => storage.recordRow(id, clock.now().toISOString())))).filter((r): r is Row => r !== undefined);
      }
      return step;
    },
  });
}

function sqliteBatch(batch: Store['batch']): NonNullable<Store['batch']> {
  if (batch === undefined) throw new Error('the vault on SQLite writes through the store\'s write batch (Store.batch)');
  return batch;
}
