import { createHmac, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Config } from '../../config/config.ts';
import type { Clock } from '../../kernel/clock.ts';
import { fail } from '../../kernel/errors.ts';
import { ID_PREFIX, isId, newId } from '../../kernel/ids.ts';
import { Secret } from '../../kernel/secret.ts';
import type { Store } from '../../store/database.ts';
import { channelSql, watchChannel, type ChannelWatch } from '../../store/notify.ts';
import type { Database } from '../../store/schema.ts';
import { ApiKeyErrors } from './errors.ts';

/**
 * API keys for shop backends. A key is shown once (`ck_<id>_<secret>`), stored as an HMAC-SHA256
 * of its secret under a key derived from the root (a keyed hash: a stolen table does not let
 * anyone test guesses offline), scoped to purposes, and revocable at once. (Medusa API keys;
 * ASVS 6.4.x, 13.3.x)
 *
 * Checking a key is on every request, so it is kept cheap without letting a revoked key through:
 * - SQLite: every request reads the key's row, through the store's own read connection (a
 *   prepared statement, a few microseconds), so a revocation by the CLI counts from its commit.
 * - PostgreSQL: a row read costs a round trip, so verified rows are cached, and a revocation
 *   sends a NOTIFY in its own transaction that empties every server's cache when it commits. The
 *   cache is used only while the LISTEN connection is up (a notification sent while it was down
 *   would be lost), a row read while a notification arrived is not kept, and no row is kept
 *   longer than a minute whatever happens.
 * The HMAC of a presented secret is remembered for the secrets seen last, so a busy key is not
 * hashed again on every call.
 *
 * A verified key's `last_used_at` is written at most once per key per hour (a conditional update,
 * so several servers write it once between them), after the request's own work and never awaited
 * by it: `custos doctor` names keys unused for 90 days, which needs days, not seconds.
 */
export interface ApiKeyInfo {
  readonly id: string;
  readonly name: string;
  readonly purposes: readonly string[];
  readonly created_at: string;
  readonly revoked_at: string | null;
  /** When the key last authenticated a request, to within an hour; null: not seen in use. */
  readonly last_used_at: string | null;
  /** Set while the key is suspended (reversible, unlike a revocation): it is refused with APIKEY_SUSPENDED. */
  readonly suspended_at: string | null;
}

export interface ApiKeyService {
  create(input: { name: string; purposes: readonly string[] }): Promise<{ key: Secret<string>; info: ApiKeyInfo }>;
  list(): Promise<ApiKeyInfo[]>;
  revoke(id: string): Promise<ApiKeyInfo>;
  /**
   * Suspends a key at once (detection's `lock_apikey` response, `custos apikey suspend`): every
   * server refuses it with APIKEY_SUSPENDED until `resume`. A revoked key stays revoked.
   */
  suspend(id: string): Promise<ApiKeyInfo>;
  /** Lifts a suspension; the key works again with the same secret. */
  resume(id: string): Promise<ApiKeyInfo>;
  /** The key's details (never its secret), or undefined. */
  get(id: string): Promise<ApiKeyInfo | undefined>;
  /**
   * The key's identity and scope, or APIKEY_INVALID for anything else (malformed, unknown,
   * revoked); a key whose secret matches but which is suspended answers APIKEY_SUSPENDED.
   */
  verify(presented: string): Promise<ApiKeyInfo>;
  /** Stops listening for revocations (PostgreSQL). */
  close(): Promise<void>;
}

const TOKEN = /^ck_([0-9A-HJKMNP-TV-Z]{26})_([A-Za-z0-9_-]{43})$/;
// A fixed digest to compare against when the id is unknown, so that both paths do the same work.
const DUMMY = Buffer.alloc(32);
/** Longest a cached key row is trusted (PostgreSQL), even with the LISTEN connection up. */
const CACHE_MS = 60_000;
const CACHE_SIZE = 1024;
const CHANNEL = 'custos_apikeys';
/** `last_used_at` is written at most this often per key. */
export const LAST_USED_RESOLUTION_MS = 3_600_000;

export function createApiKeyService(deps: {
  db: Kysely<Database>;
  store: Pick<Store, 'dialect' | 'read'>;
  /** PostgreSQL: where to LISTEN for revocations (without it, every request reads the row). */
  database?: Config['database'];
  hashKey: KeyObject;
  /** Older versions of the hash key (after `custos keys rotate --key api-key-hash`): keys hashed under them still verify. */
  previousHashKeys?: readonly KeyObject[];
  clock: Clock;
  onListenError?: (error: unknown) => void;
  /** A failed write of `last_used_at` (the request it came from has its answer already). */
  onUseNoteError?: (error: unknown) => void;
}): ApiKeyService {
  const { db, store, hashKey, clock } = deps;
  // The one query on every request, compiled once (Kysely otherwise builds and compiles it per call).
  const byIdSql = db.selectFrom('api_keys').selectAll().where('id', '=', '').compile().sql;
  const digests = new Map<string, Buffer>();
  const digest = (secret: string): Buffer => {
    const known = digests.get(secret);
    if (known !== undefined) return known;
    const d = createHmac('sha256', hashKey).update(secret, 'utf8').digest();
    if (digests.size >= CACHE_SIZE) digests.clear();
    digests.set(secret, d);
    return d;
  };

  // PostgreSQL row cache, emptied by every revocation notice.
  const rows = new Map<string, { row: Database['api_keys']; until: number }>();
  let generation = 0;
  let watch: ChannelWatch | undefined;
  const pgDatabase = deps.database?.kind === 'postgres' && store.dialect === 'postgres' ? deps.database : undefined;
  const invalidate = () => {
    generation += 1;
    rows.clear();
  };

  async function rowById(id: string): Promise<Database['api_keys'] | undefined> {
    if (pgDatabase === undefined) return (await store.read<Database['api_keys']>(byIdSql, [id]))[0];
    watch ??= watchChannel(pgDatabase, CHANNEL, invalidate, deps.onListenError);
    const now = Date.now();
    const hit = rows.get(id);
    if (hit !== undefined && watch.live && hit.until > now) return hit.row;
    const seen = generation;
    const row = (await store.read<Database['api_keys']>(byIdSql, [id]))[0];
    if (row !== undefined && watch.live && generation === seen) {
      if (rows.size >= CACHE_SIZE) rows.clear();
      rows.set(id, { row, until: now + CACHE_MS });
    }
    return row;
  }
  const toInfo = (r: Database['api_keys']): ApiKeyInfo => ({
    id: r.id,
    name: r.name,
    purposes: JSON.parse(r.purposes) as string[],
    created_at: r.created_at,
    revoked_at: r.revoked_at,
    last_used_at: r.last_used_at,
    suspended_at: r.suspended_at,
  });

  // Keys whose use this process wrote last (id → epoch ms), and the writes still running.
  const noted = new Map<string, number>();
  const noting = new Set<Promise<void>>();
  function noteUse(row: Database['api_keys']): void {
    const now = clock.now().getTime();
    const known = Math.max(noted.get(row.id) ?? 0, row.last_used_at === null ? 0 : Date.parse(row.last_used_at));
    if (now - known < LAST_USED_RESOLUTION_MS) return;
    if (noted.size >= CACHE_SIZE) noted.clear();
    noted.set(row.id, now);
    const before = new Date(now - LAST_USED_RESOLUTION_MS).toISOString();
    const write = db
      .updateTable('api_keys')
      .set({ last_used_at: new Date(now).toISOString() })
      .where('id', '=', row.id)
      .where((eb) => eb.or([eb('last_used_at', 'is', null), eb('last_used_at', '<', before)]))
      .execute()
      .then(
        () => undefined,
        (error: unknown) => {
          noted.delete(row.id);
          deps.onUseNoteError?.(error);
        },
      )
      .finally(() => noting.delete(write));
    noting.add(write);
  }

  /** Sets the key's state (only on a key not revoked, or `active`: neither revoked nor suspended) in one transaction that, on PostgreSQL, tells every server to forget its cached row. */
  async function change(id: string, set: Partial<Pick<Database['api_keys'], 'revoked_at' | 'suspended_at'>>, only: 'revoked_at' | 'active'): Promise<ApiKeyInfo> {
    if (!isId(ID_PREFIX.apiKey, id)) fail(ApiKeyErrors.APIKEY_NOT_FOUND, 'no API key with that id');
    await db.transaction().execute(async (tx) => {
      let update = tx.updateTable('api_keys').set(set).where('id', '=', id);
      update = only === 'active' ? update.where('revoked_at', 'is', null).where('suspended_at', 'is', null) : update.where(only, 'is', null);
      await update.execute();
      // Delivered to every listening server when this transaction commits.
      if (store.dialect === 'postgres') await sql`SELECT pg_notify(${sql.raw(channelSql(CHANNEL))}, ${id})`.execute(tx);
    });
    invalidate();
    const row = await db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
    if (row === undefined) fail(ApiKeyErrors.APIKEY_NOT_FOUND, 'no API key with that id');
    return toInfo(row);
  }

  return {
    async create({ name, purposes }) {
      if (name.length < 1 || name.length > 100 || /[\p{Cc}]/u.test(name))
        fail(ApiKeyErrors.APIKEY_NAME_INVALID, 'a key name must be 1–100 printable characters');
      const id = newId(ID_PREFIX.apiKey, clock.now().getTime());
      const secret = randomBytes(32).toString('base64url');
      const row = {
        id,
        name,
        secret_hash: digest(secret).toString('base64url'),
        purposes: JSON.stringify([...new Set(purposes)]),
        created_at: clock.now().toISOString(),
        revoked_at: null,
        last_used_at: null,
        suspended_at: null,
      };
      await db.insertInto('api_keys').values(row).execute();
      return { key: new Secret(`ck_${id.slice(ID_PREFIX.apiKey.length + 1)}_${secret}`), info: toInfo(row) };
    },

    async list() {
      const rows = await db.selectFrom('api_keys').selectAll().orderBy('created_at').orderBy('id').execute();
      return rows.map(toInfo);
    },

    revoke: (id) => change(id, { revoked_at: clock.now().toISOString() }, 'revoked_at'),

    suspend: (id) => change(id, { suspended_at: clock.now().toISOString() }, 'active'),

    // A revoked key is not resumed: the update leaves it as it is.
    resume: (id) => change(id, { suspended_at: null }, 'revoked_at'),

    async get(id) {
      if (!isId(ID_PREFIX.apiKey, id)) return undefined;
      const row = await db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
      return row === undefined ? undefined : toInfo(row);
    },

    async verify(presented) {
      const m = TOKEN.exec(presented);
      if (m === null) fail(ApiKeyErrors.APIKEY_INVALID, 'invalid API key');
      const id = `${ID_PREFIX.apiKey}_${m[1]!}`;
      const row = await rowById(id);
      const expected = row === undefined ? DUMMY : Buffer.from(row.secret_hash, 'base64url');
      const against = expected.length === 32 ? expected : DUMMY;
      const matches =
        timingSafeEqual(digest(m[2]!), against) ||
        (deps.previousHashKeys ?? []).some((k) => timingSafeEqual(createHmac('sha256', k).update(m[2]!, 'utf8').digest(), against));
      if (row === undefined || !matches || row.revoked_at !== null) fail(ApiKeyErrors.APIKEY_INVALID, 'invalid API key');
      // Only the holder of the right secret learns of the suspension.
      if (row.suspended_at !== null) fail(ApiKeyErrors.APIKEY_SUSPENDED, 'this API key is suspended; the shop\'s security officer can resume it');
      noteUse(row);
      return toInfo(row);
    },

    async close() {
      await Promise.all(noting);
      await watch?.close();
      watch = undefined;
      invalidate();
    },
  };
}
