import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import { sql, type Kysely, type Transaction } from 'kysely';
import type { Config } from '../config/config.ts';
import type { Database } from '../store/schema.ts';
import type { Store } from '../store/database.ts';
import { channelSql, watchChannel, type ChannelWatch } from '../store/notify.ts';
import type { Clock } from '../kernel/clock.ts';
import { open, seal } from './aead.ts';
import { rootByKid, rootFromWrapKey, type RootRing } from './keyring.ts';

/**
 * Key-encryption keys (versioned, wrapped by the root key) and data keys, one row per (subject,
 * version), wrapped by a KEK (NIST SP 800-57 Pt. 1 §6.2: keys wrapped under keys). A KEK rotation
 * adds a KEK version and re-wraps data keys; field ciphertexts never change, because they are
 * sealed under the data key, whose own version is part of their associated data.
 *
 * Caches stay exact: data keys are cached by (subject, version) and KEKs by version, and every
 * change that must reach other processes (a destroyed or new data key, a retired KEK) bumps the
 * `key_state` generation in its transaction. SQLite: a cache hit first reads the generation row
 * and empties the caches when it moved, either itself (one prepared statement) or, on the hot path,
 * as the column KEY_GENERATION of the caller's own statement that read the rows it is about to
 * open (one snapshot for both, and one statement fewer per request). PostgreSQL: the change also sends
 * a NOTIFY that empties every listening process's caches when it commits, and the caches are used
 * only while the LISTEN connection is up (as API-key revocation does, src/modules/apikeys).
 * A write checks its key row inside its own transaction (PostgreSQL: FOR SHARE, so a destruction
 * waits for it), so nothing is sealed under a destroyed or superseded data key.
 */
export type Dek = { readonly key: KeyObject; readonly version: number; readonly __role: 'dek' };

/**
 * The key generation as a column of another statement (SQLite): a caller that opens rows selects
 * it with them and passes it to `dekFor`/`dekVersion` as `seen`, so the caches are checked against
 * the state of that same snapshot instead of a statement of their own.
 */
export const KEY_GENERATION_COLUMN = "(SELECT value FROM key_state WHERE name = 'generation')";
type Kek = { readonly key: KeyObject; readonly version: number; readonly __role: 'kek' };
type Db = Kysely<Database> | Transaction<Database>;

export class KeyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'KeyError';
  }
}

const kekAad = (version: number) => `custos:kek|${version}`;
const dekAad = (subjectId: string, kekVersion: number, dekVersion: number) =>
  `custos:dek|${subjectId}|${kekVersion}|${dekVersion}`;

function wrap(key: KeyObject, raw: Buffer, aad: string): string {
  return seal(key, raw, aad).toString('base64url');
}

function unwrap(key: KeyObject, wrapped: string, aad: string, what: string): KeyObject {
  const raw = open(key, Buffer.from(wrapped, 'base64url'), aad);
  if (raw === undefined) throw new KeyError(`${what} failed to unwrap: wrong root key or altered key material`);
  return createSecretKey(raw);
}

export interface KekVersionStatus {
  version: number;
  created_at: string;
  root_kid: string | null;
  /** Data keys this version wraps. */
  subjects: number;
}

export interface KeyStore {
  /** Makes sure a first KEK exists and that this root opens it; safe to run from several processes. */
  init(): Promise<void>;
  /**
   * The current data key of a subject, created on first use inside the caller's transaction.
   * `create`: 'new' for an id just generated (no lookup needed), true to create when missing,
   * false to only load. Inside a transaction the key row is always read (and on PostgreSQL
   * locked FOR SHARE): a destroyed key is not served, a superseded one is not sealed under.
   */
  dekFor(db: Db, subjectId: string, create: boolean | 'new', seen?: number): Promise<Dek | undefined>;
  /**
   * A given version of a subject's data key, for opening what was sealed under it. `seen` (both
   * methods, SQLite): the key generation read by KEY_GENERATION_COLUMN in the statement that read
   * the rows to open; without it the generation is read here.
   */
  dekVersion(db: Db, subjectId: string, version: number, seen?: number): Promise<Dek | undefined>;
  /**
   * A fresh data key for a new subject, wrapped under the current KEK as this process last read it
   * (nothing is written): for a caller that stores the row in its own statement, guarded so that
   * it stores nothing if a newer KEK exists; it then calls `kekOutdated` and mints again.
   */
  mintDek(subjectId: string): Promise<{ dek: Dek; row: Database['subject_keys'] }>;
  /** Remembers a minted key once its row is committed. */
  adopt(subjectId: string, dek: Dek): void;
  /** A newer KEK version exists: read the current version again before the next mint. */
  kekOutdated(): void;
  /** Adds a data-key version for a subject (wrapped under the current KEK); returns it. Older versions stay for opening. */
  addDekVersion(subjectId: string): Promise<number>;
  /**
   * Data-key rotation, step 1: up to `limit` subjects owning vault records whose newest data key
   * was made before `since` (ISO time), by id.
   */
  subjectsToRotate(since: string, limit: number): Promise<string[]>;
  /** Data-key rotation, step 2: a new current version for each subject, in one transaction (one cache generation). */
  addDekVersions(subjectIds: readonly string[]): Promise<number>;
  /**
   * Data-key rotation, last step, once every record is re-sealed under its subject's newest key:
   * deletes the older versions of subjects owning vault records (hold keys keep theirs). Returns how many went.
   */
  destroySuperseded(): Promise<number>;
  /**
   * Crypto-shredding: deletes every version of a subject's wrapped data key and empties every
   * process's cache of it (in the caller's transaction when given). Returns how many versions went.
   */
  destroy(subjectId: string, via?: Db): Promise<number>;
  status(): Promise<{ current: number; versions: KekVersionStatus[] }>;
  /** Adds a KEK version; returns it. */
  addKekVersion(): Promise<number>;
  /** Re-wraps up to `batch` data keys still under an older KEK; returns how many it moved. */
  rewrapBatch(target: number, batch: number): Promise<number>;
  pendingRewrap(target: number): Promise<number>;
  /** Destroys every KEK version older than the current one that wraps no data key; returns them. */
  retire(): Promise<number[]>;
  /** Re-wraps up to `batch` KEKs not yet under the current root key; returns how many it moved. */
  rewrapKeksToRoot(batch: number): Promise<number>;
  /** KEKs not yet under the current root key. */
  pendingRootRewrap(): Promise<number>;
  /**
   * A count that moves whenever the key caches are emptied because a key changed (SQLite: the
   * generation moved, `seen` as for `dekVersion`; PostgreSQL: a NOTIFY or a lost listener), or
   * undefined while caches must not be trusted: other caches of key material follow it.
   */
  changes(seen?: number): Promise<number | undefined>;
  /** In the caller's transaction: every process empties its key caches once it commits. */
  announce(tx: Db): Promise<void>;
  /** Stops listening for key changes (PostgreSQL). */
  close(): Promise<void>;
}

const CHANNEL = 'custos_keys';
/** key_state rows: the earliest and the latest data-key destruction that backups may still hold. */
export const SHRED_FIRST = 'shred-first';
export const SHRED_LAST = 'shred-last';

export function createKeyStore(deps: {
  db: Kysely<Database>;
  /** The root keys (current and, during a root rotation, previous). */
  ring?: RootRing;
  /** A single root given by its wrapping key (tests). */
  kekWrap?: KeyObject;
  clock: Clock;
  cacheSize?: number;
  /** The store, for the generation check on SQLite's read connection and FOR SHARE on PostgreSQL. */
  store?: Pick<Store, 'dialect' | 'read'>;
  /** PostgreSQL: where to LISTEN for key changes (without it, every data key is read from its row). */
  database?: Config['database'];
  onListenError?: (error: unknown) => void;
}): KeyStore {
  const { db, clock } = deps;
  const ring: RootRing = deps.ring ?? singleRing(deps.kekWrap);
  const cacheSize = deps.cacheSize ?? 50_000;
  const dialect = deps.store?.dialect;
  const keks = new Map<number, Kek>();
  /** Data keys by `subject\0version`; `latest` maps a subject to its current version. */
  const deks = new Map<string, Dek>();
  const latest = new Map<string, number>();
  /** Every version of a subject held in `deks`, so forgetting a subject misses none. */
  const held = new Map<string, Set<number>>();
  const slot = (subjectId: string, version: number) => `${subjectId}\u0000${version}`;
  /**
   * Moves on every invalidation (a NOTIFY, a new generation, a subject forgotten). A read that
   * began before an invalidation does not cache what it read: the key may have been destroyed
   * between its query and its answer, and caching it then would serve a destroyed key.
   */
  let epoch = 0;
  /** The current KEK version as last read, for minting (reset whenever the KEKs may have changed). */
  let current: Promise<number> | undefined;

  // --- cache validity ---
  let seenGeneration: number | undefined;
  let watch: ChannelWatch | undefined;
  const pgDatabase = deps.database?.kind === 'postgres' && dialect === 'postgres' ? deps.database : undefined;
  /** Moves with every emptying of the caches (`changes`). */
  let resets = 0;
  const emptyCaches = () => {
    resets++;
    epoch++;
    current = undefined;
    deks.clear();
    latest.clear();
    held.clear();
    keks.clear();
  };
  const generationSql = db.selectFrom('key_state').select('value').where('name', '=', 'generation').compile().sql;
  const readGeneration = async (): Promise<number> => {
    if (deps.store !== undefined && dialect === 'sqlite') return Number((await deps.store.read<{ value: number }>(generationSql, ['generation']))[0]?.value ?? 0);
    const row = await db.selectFrom('key_state').select('value').where('name', '=', 'generation').executeTakeFirst();
    return Number(row?.value ?? 0);
  };
  /**
   * True when the caches may be used; empties them first if another process changed a key. `seen`:
   * the generation the caller read with its rows (SQLite), else it is read now.
   */
  async function cachesValid(seen: number | undefined): Promise<boolean> {
    if (pgDatabase !== undefined) {
      watch ??= watchChannel(pgDatabase, CHANNEL, emptyCaches, deps.onListenError);
      return watch.live;
    }
    const generation = seen ?? (await readGeneration());
    if (generation !== seenGeneration) {
      emptyCaches();
      seenGeneration = generation;
    }
    return true;
  }
  /** In the changing transaction: every process empties its caches once it commits. */
  async function bump(tx: Db): Promise<void> {
    await sql`UPDATE key_state SET value = value + 1 WHERE name = 'generation'`.execute(tx);
    if (dialect === 'postgres' || (dialect === undefined && deps.database?.kind === 'postgres')) {
      await sql`SELECT pg_notify(${sql.raw(channelSql(CHANNEL))}, '')`.execute(tx);
    }
  }

  /**
   * A destruction not yet reached in backups: `shred-first` keeps the earliest (it stays while set),
   * `shred-last` the latest. The retention sweep rotates and retires the KEK once the first is due.
   */
  async function noteShred(tx: Db, nowMs: number): Promise<void> {
    await tx.insertInto('key_state').values({ name: SHRED_FIRST, value: nowMs }).onConflict((oc) => oc.column('name').doNothing()).execute();
    await tx
      .insertInto('key_state')
      .values({ name: SHRED_LAST, value: nowMs })
      .onConflict((oc) => oc.column('name').doUpdateSet({ value: nowMs }))
      .execute();
  }

  function unwrapKek(row: { version: number; wrapped: string; root_kid: string | null }): Buffer {
    const raw = (row.root_kid === null ? ring.current() : rootByKid(ring, row.root_kid, `KEK v${row.version}`)).unwrap(row.wrapped, kekAad(row.version));
    if (raw === undefined) throw new KeyError(`KEK v${row.version} failed to unwrap: wrong root key (${ring.variable}) or altered key material`);
    return raw;
  }

  async function kek(version: number, via: Db = db): Promise<Kek> {
    const cached = keks.get(version);
    if (cached !== undefined) return cached;
    const row = await via.selectFrom('keks').select(['version', 'wrapped', 'root_kid']).where('version', '=', version).executeTakeFirst();
    if (row === undefined) throw new KeyError(`KEK version ${version} is missing`);
    const k: Kek = { key: createSecretKey(unwrapKek(row)), version, __role: 'kek' };
    keks.set(version, k);
    return k;
  }

  async function currentVersion(via: Db): Promise<number> {
    const row = await via.selectFrom('keks').select((eb) => eb.fn.max('version').as('v')).executeTakeFirst();
    const v = row?.v;
    if (v === null || v === undefined) throw new KeyError('no KEK yet: run migrations and start the service once');
    return Number(v);
  }

  /** Caches a key read while `since` was the epoch; nothing when an invalidation came in between. */
  function remember(subjectId: string, dek: Dek, isLatest: boolean, since: number): void {
    if (since !== epoch) return;
    if (deks.size >= cacheSize) {
      // Evicting a whole subject keeps `held` exact.
      const oldest = deks.keys().next().value;
      if (oldest !== undefined) dropSubject(oldest.slice(0, oldest.indexOf('\u0000')));
    }
    deks.set(slot(subjectId, dek.version), dek);
    let versions = held.get(subjectId);
    if (versions === undefined) held.set(subjectId, (versions = new Set()));
    versions.add(dek.version);
    if (isLatest) latest.set(subjectId, dek.version);
  }
  function dropSubject(subjectId: string): void {
    latest.delete(subjectId);
    const versions = held.get(subjectId);
    held.delete(subjectId);
    if (versions !== undefined) for (const v of versions) deks.delete(slot(subjectId, v));
  }
  function forgetSubject(subjectId: string): void {
    epoch++;
    dropSubject(subjectId);
  }

  type KeyRow = Pick<Database['subject_keys'], 'kek_version' | 'dek_version' | 'wrapped'>;
  async function openRow(via: Db, subjectId: string, row: KeyRow): Promise<Dek> {
    const k = await kek(row.kek_version, via);
    return { key: unwrap(k.key, row.wrapped, dekAad(subjectId, row.kek_version, row.dek_version), 'data key'), version: row.dek_version, __role: 'dek' };
  }

  async function insertKek(version: number): Promise<void> {
    const root = ring.current();
    await db
      .insertInto('keks')
      .values({ version, wrapped: root.wrap(randomBytes(32), kekAad(version)), created_at: clock.now().toISOString(), root_kid: root.kid })
      .onConflict((oc) => oc.column('version').doNothing())
      .execute();
  }

  function newRow(subjectId: string, k: Kek, version: number, raw: Buffer): Database['subject_keys'] {
    return {
      subject_id: subjectId,
      kek_version: k.version,
      dek_version: version,
      wrapped: wrap(k.key, raw, dekAad(subjectId, k.version, version)),
      created_at: clock.now().toISOString(),
    };
  }

  return {
    async init() {
      const row = await db.selectFrom('keks').select('version').limit(1).executeTakeFirst();
      if (row === undefined) await insertKek(1);
      // KEKs made before roots were named (migration 0009) are wrapped by the root of this start.
      const unnamed = await db.selectFrom('keks').select(['version', 'wrapped', 'root_kid']).where('root_kid', 'is', null).execute();
      for (const r of unnamed) {
        unwrapKek(r);
        await db.updateTable('keks').set({ root_kid: ring.current().kid }).where('version', '=', r.version).where('root_kid', 'is', null).execute();
      }
      // Unwrapping proves the root key is the one these keys were made with.
      await kek(await currentVersion(db));
    },

    async dekFor(via, subjectId, create, seen) {
      const inTx = via.isTransaction;
      if (!inTx && (await cachesValid(seen))) {
        const version = latest.get(subjectId);
        const cached = version === undefined ? undefined : deks.get(slot(subjectId, version));
        if (cached !== undefined) return cached;
      }
      const since = epoch;
      let row: KeyRow | undefined;
      if (create !== 'new') {
        let q = via
          .selectFrom('subject_keys')
          .select(['kek_version', 'dek_version', 'wrapped'])
          .where('subject_id', '=', subjectId)
          .orderBy('dek_version', 'desc')
          .limit(1);
        if (inTx && dialect === 'postgres') q = q.forShare();
        row = await q.executeTakeFirst();
      }
      if (row !== undefined) {
        const cached = deks.get(slot(subjectId, row.dek_version));
        const dek = cached ?? (await openRow(via, subjectId, row));
        remember(subjectId, dek, true, since);
        return dek;
      }
      forgetSubject(subjectId);
      if (!create) return undefined;
      const k = await kek(await currentVersion(via), via);
      const raw = randomBytes(32);
      await via.insertInto('subject_keys').values(newRow(subjectId, k, 1, raw)).execute();
      // Cached at once: if the caller's transaction rolls back, the subject id (random, fresh) is
      // never used again, so the entry is merely unused.
      const dek: Dek = { key: createSecretKey(raw), version: 1, __role: 'dek' };
      remember(subjectId, dek, true, epoch);
      return dek;
    },

    async dekVersion(via, subjectId, version, seen) {
      if (!via.isTransaction && (await cachesValid(seen))) {
        const cached = deks.get(slot(subjectId, version));
        if (cached !== undefined) return cached;
      }
      const since = epoch;
      const row = await via
        .selectFrom('subject_keys')
        .select(['kek_version', 'dek_version', 'wrapped'])
        .where('subject_id', '=', subjectId)
        .where('dek_version', '=', version)
        .executeTakeFirst();
      if (row === undefined) return undefined;
      const dek = await openRow(via, subjectId, row);
      remember(subjectId, dek, false, since);
      return dek;
    },

    async mintDek(subjectId) {
      const currentKek = async (): Promise<Kek> => {
        const read = (current ??= currentVersion(db));
        read.catch(() => {
          if (current === read) current = undefined;
        });
        return kek(await read);
      };
      let k: Kek;
      try {
        k = await currentKek();
      } catch (error) {
        // The version read earlier was retired meanwhile (by another process): read it again.
        if (!(error instanceof KeyError)) throw error;
        current = undefined;
        k = await currentKek();
      }
      const raw = randomBytes(32);
      return { dek: { key: createSecretKey(raw), version: 1, __role: 'dek' }, row: newRow(subjectId, k, 1, raw) };
    },

    adopt(subjectId, dek) {
      remember(subjectId, dek, true, epoch);
    },

    kekOutdated() {
      current = undefined;
    },

    async addDekVersion(subjectId) {
      const version = await db.transaction().execute(async (tx) => {
        const top = await tx.selectFrom('subject_keys').select((eb) => eb.fn.max('dek_version').as('v')).where('subject_id', '=', subjectId).executeTakeFirst();
        if (top?.v === null || top?.v === undefined) throw new KeyError('the subject has no data key');
        const next = Number(top.v) + 1;
        const k = await kek(await currentVersion(tx), tx);
        await tx.insertInto('subject_keys').values(newRow(subjectId, k, next, randomBytes(32))).execute();
        await bump(tx);
        return next;
      });
      forgetSubject(subjectId);
      return version;
    },

    async subjectsToRotate(since, limit) {
      const rows = await db
        .selectFrom('subject_keys as k')
        .select('k.subject_id')
        .where(({ exists, selectFrom }) => exists(selectFrom('records as r').select('r.id').whereRef('r.subject_id', '=', 'k.subject_id')))
        .groupBy('k.subject_id')
        .having((eb) => eb.fn.max('k.created_at'), '<', since)
        .orderBy('k.subject_id')
        .limit(limit)
        .execute();
      return rows.map((r) => r.subject_id);
    },

    async addDekVersions(subjectIds) {
      if (subjectIds.length === 0) return 0;
      const added = await db.transaction().execute(async (tx) => {
        const tops = await tx
          .selectFrom('subject_keys')
          .select(['subject_id', (eb) => eb.fn.max('dek_version').as('v')])
          .where('subject_id', 'in', [...subjectIds])
          .groupBy('subject_id')
          .execute();
        const k = await kek(await currentVersion(tx), tx);
        const rows = tops.map((t) => newRow(t.subject_id, k, Number(t.v) + 1, randomBytes(32)));
        if (rows.length > 0) await tx.insertInto('subject_keys').values(rows).execute();
        await bump(tx);
        return rows.length;
      });
      for (const id of subjectIds) forgetSubject(id);
      return added;
    },

    async destroySuperseded() {
      const n = await db.transaction().execute(async (tx) => {
        const result = await tx
          .deleteFrom('subject_keys')
          .where(({ exists, selectFrom }) => exists(selectFrom('records as r').select('r.id').whereRef('r.subject_id', '=', 'subject_keys.subject_id')))
          .where(({ eb, selectFrom }) =>
            eb('dek_version', '<', selectFrom('subject_keys as m').select((e) => e.fn.max('m.dek_version').as('top')).whereRef('m.subject_id', '=', 'subject_keys.subject_id')),
          )
          .executeTakeFirst();
        const deleted = Number(result.numDeletedRows);
        if (deleted > 0) await bump(tx);
        return deleted;
      });
      if (n > 0) emptyCaches();
      return n;
    },

    async destroy(subjectId, via) {
      const run = async (tx: Db) => {
        const result = await tx.deleteFrom('subject_keys').where('subject_id', '=', subjectId).executeTakeFirst();
        await bump(tx);
        await noteShred(tx, clock.now().getTime());
        return Number(result.numDeletedRows);
      };
      const n = via === undefined ? await db.transaction().execute(run) : await run(via);
      forgetSubject(subjectId);
      return n;
    },

    async status() {
      const versions = await db.selectFrom('keks').select(['version', 'created_at', 'root_kid']).orderBy('version').execute();
      const counts = await db
        .selectFrom('subject_keys')
        .select(['kek_version', (eb) => eb.fn.countAll<number>().as('n')])
        .groupBy('kek_version')
        .execute();
      const byVersion = new Map(counts.map((c) => [c.kek_version, Number(c.n)]));
      return {
        current: versions.at(-1)?.version ?? 0,
        versions: versions.map((v) => ({ ...v, subjects: byVersion.get(v.version) ?? 0 })),
      };
    },

    async addKekVersion() {
      const next = (await currentVersion(db)) + 1;
      await insertKek(next);
      return currentVersion(db);
    },

    async pendingRewrap(target) {
      const row = await db
        .selectFrom('subject_keys')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('kek_version', '<', target)
        .executeTakeFirst();
      return Number(row?.n ?? 0);
    },

    async rewrapBatch(target, batch) {
      const to = await kek(target);
      const rows = await db
        .selectFrom('subject_keys')
        .select(['subject_id', 'kek_version', 'dek_version', 'wrapped'])
        .where('kek_version', '<', target)
        .orderBy('subject_id')
        .orderBy('dek_version')
        .limit(batch)
        .execute();
      let moved = 0;
      await db.transaction().execute(async (tx) => {
        for (const row of rows) {
          const from = await kek(row.kek_version, tx);
          const raw = open(from.key, Buffer.from(row.wrapped, 'base64url'), dekAad(row.subject_id, row.kek_version, row.dek_version));
          if (raw === undefined) throw new KeyError('a data key failed to unwrap during rotation');
          // Conditional on the version we read: a concurrent rotation or erasure wins cleanly.
          const result = await tx
            .updateTable('subject_keys')
            .set({ kek_version: target, wrapped: wrap(to.key, raw, dekAad(row.subject_id, target, row.dek_version)) })
            .where('subject_id', '=', row.subject_id)
            .where('dek_version', '=', row.dek_version)
            .where('kek_version', '=', row.kek_version)
            .executeTakeFirst();
          moved += Number(result.numUpdatedRows);
        }
      });
      return moved;
    },

    async retire() {
      const retired = await db.transaction().execute(async (tx) => {
        const top = await currentVersion(tx);
        const unused = await tx
          .selectFrom('keks')
          .select('version')
          .where('version', '<', top)
          .where(({ not, exists, selectFrom }) => not(exists(selectFrom('subject_keys').select('subject_id').whereRef('subject_keys.kek_version', '=', 'keks.version'))))
          .orderBy('version')
          .execute();
        const versions = unused.map((r) => r.version);
        if (versions.length === 0) return versions;
        await tx.deleteFrom('keks').where('version', 'in', versions).execute();
        await bump(tx);
        return versions;
      });
      for (const v of retired) keks.delete(v);
      if (retired.length > 0) current = undefined;
      return retired;
    },

    async rewrapKeksToRoot(batch) {
      const target = ring.current();
      const rows = await db.selectFrom('keks').select(['version', 'wrapped', 'root_kid']).where('root_kid', '!=', target.kid).orderBy('version').limit(batch).execute();
      let moved = 0;
      await db.transaction().execute(async (tx) => {
        for (const row of rows) {
          const raw = unwrapKek(row);
          const result = await tx
            .updateTable('keks')
            .set({ root_kid: target.kid, wrapped: target.wrap(raw, kekAad(row.version)) })
            .where('version', '=', row.version)
            .where('root_kid', '=', row.root_kid!)
            .executeTakeFirst();
          moved += Number(result.numUpdatedRows);
        }
      });
      return moved;
    },

    async pendingRootRewrap() {
      const row = await db
        .selectFrom('keks')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where((eb) => eb.or([eb('root_kid', '!=', ring.current().kid), eb('root_kid', 'is', null)]))
        .executeTakeFirst();
      return Number(row?.n ?? 0);
    },

    async changes(seen) {
      return (await cachesValid(seen)) ? resets : undefined;
    },

    announce: bump,

    async close() {
      await watch?.close();
      watch = undefined;
    },
  };
}

function singleRing(kekWrap: KeyObject | undefined): RootRing {
  if (kekWrap === undefined) throw new KeyError('createKeyStore needs a root ring or a kekWrap key');
  const root = rootFromWrapKey(kekWrap);
  return { name: 'a given wrapping key', variable: 'CUSTOS_ROOT_KEY', current: () => root, previous: () => [], byKid: (kid) => (kid === root.kid ? root : undefined), reload: () => undefined };
}
