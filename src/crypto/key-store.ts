import { createSecretKey, randomBytes, type KeyObject } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { Database } from '../store/schema.ts';
import type { Clock } from '../kernel/clock.ts';
import { open, seal } from './aead.ts';

/**
 * Key-encryption keys (versioned, wrapped by the root) and one data key per data subject (wrapped
 * by a KEK). Rotation adds a KEK version and re-wraps data keys; field ciphertexts never change,
 * because they are sealed under the data key, whose own version is part of their associated data.
 */
export type Dek = { readonly key: KeyObject; readonly version: number; readonly __role: 'dek' };
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

export interface KeyStore {
  /** Makes sure a first KEK exists; safe to run from several processes. */
  init(): Promise<void>;
  /**
   * The data key of a subject, created on first use inside the caller's transaction. `create`:
   * 'new' for an id just generated (no lookup needed), true to create when missing, false to only load.
   */
  dekFor(db: Db, subjectId: string, create: boolean | 'new'): Promise<Dek | undefined>;
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
  /** Destroys a subject's data key (crypto-shredding) and forgets it here. */
  forget(subjectId: string): void;
  status(): Promise<{ current: number; versions: { version: number; created_at: string; subjects: number }[] }>;
  /** Adds a KEK version; returns it. */
  addKekVersion(): Promise<number>;
  /** Re-wraps up to `batch` data keys still under an older KEK; returns how many it moved. */
  rewrapBatch(target: number, batch: number): Promise<number>;
  pendingRewrap(target: number): Promise<number>;
}

export function createKeyStore(deps: { db: Kysely<Database>; kekWrap: KeyObject; clock: Clock; cacheSize?: number }): KeyStore {
  const { db, kekWrap, clock } = deps;
  const cacheSize = deps.cacheSize ?? 50_000;
  const keks = new Map<number, Kek>();
  const deks = new Map<string, Dek>();

  async function kek(version: number, via: Db = db): Promise<Kek> {
    const cached = keks.get(version);
    if (cached !== undefined) return cached;
    const row = await via.selectFrom('keks').select(['version', 'wrapped']).where('version', '=', version).executeTakeFirst();
    if (row === undefined) throw new KeyError(`KEK version ${version} is missing`);
    const k: Kek = { key: unwrap(kekWrap, row.wrapped, kekAad(version), `KEK v${version}`), version, __role: 'kek' };
    keks.set(version, k);
    return k;
  }

  async function currentVersion(via: Db): Promise<number> {
    const row = await via.selectFrom('keks').select((eb) => eb.fn.max('version').as('v')).executeTakeFirst();
    const v = row?.v;
    if (v === null || v === undefined) throw new KeyError('no KEK yet: run migrations and start the service once');
    return Number(v);
  }

  let current: Promise<number> | undefined;

  function remember(subjectId: string, dek: Dek): void {
    if (deks.size >= cacheSize) {
      const oldest = deks.keys().next().value;
      if (oldest !== undefined) deks.delete(oldest);
    }
    deks.set(subjectId, dek);
  }

  async function insertKek(version: number): Promise<void> {
    await db
      .insertInto('keks')
      .values({ version, wrapped: wrap(kekWrap, randomBytes(32), kekAad(version)), created_at: clock.now().toISOString() })
      .onConflict((oc) => oc.column('version').doNothing())
      .execute();
  }

  return {
    async init() {
      const row = await db.selectFrom('keks').select('version').limit(1).executeTakeFirst();
      if (row === undefined) await insertKek(1);
      // Unwrapping proves the root key is the one these keys were made with.
      await kek(await currentVersion(db));
    },

    async dekFor(via, subjectId, create) {
      const cached = deks.get(subjectId);
      if (cached !== undefined) return cached;
      const row = create === 'new' ? undefined : await via
        .selectFrom('subject_keys')
        .select(['kek_version', 'dek_version', 'wrapped'])
        .where('subject_id', '=', subjectId)
        .executeTakeFirst();
      if (row !== undefined) {
        const k = await kek(row.kek_version, via);
        const dek: Dek = {
          key: unwrap(k.key, row.wrapped, dekAad(subjectId, row.kek_version, row.dek_version), 'data key'),
          version: row.dek_version,
          __role: 'dek',
        };
        remember(subjectId, dek);
        return dek;
      }
      if (!create) return undefined;
      const k = await kek(await currentVersion(via), via);
      const raw = randomBytes(32);
      await via
        .insertInto('subject_keys')
        .values({
          subject_id: subjectId,
          kek_version: k.version,
          dek_version: 1,
          wrapped: wrap(k.key, raw, dekAad(subjectId, k.version, 1)),
          created_at: clock.now().toISOString(),
        })
        .execute();
      // Cached at once: if the caller's transaction rolls back, the subject id (random, fresh) is
      // never used again, so the entry is merely unused.
      const dek: Dek = { key: createSecretKey(raw), version: 1, __role: 'dek' };
      remember(subjectId, dek);
      return dek;
    },

    async mintDek(subjectId) {
      const read = (current ??= currentVersion(db));
      read.catch(() => {
        if (current === read) current = undefined;
      });
      const k = await kek(await read);
      const raw = randomBytes(32);
      return {
        dek: { key: createSecretKey(raw), version: 1, __role: 'dek' },
        row: {
          subject_id: subjectId,
          kek_version: k.version,
          dek_version: 1,
          wrapped: wrap(k.key, raw, dekAad(subjectId, k.version, 1)),
          created_at: clock.now().toISOString(),
        },
      };
    },

    adopt(subjectId, dek) {
      remember(subjectId, dek);
    },

    kekOutdated() {
      current = undefined;
    },

    forget(subjectId) {
      deks.delete(subjectId);
    },

    async status() {
      const versions = await db.selectFrom('keks').select(['version', 'created_at']).orderBy('version').execute();
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
            .where('kek_version', '=', row.kek_version)
            .executeTakeFirst();
          moved += Number(result.numUpdatedRows);
        }
      });
      return moved;
    },
  };
}
