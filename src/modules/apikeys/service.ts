import { createHmac, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import { CompiledQuery, type Kysely } from 'kysely';
import type { Clock } from '../../kernel/clock.ts';
import { fail } from '../../kernel/errors.ts';
import { ID_PREFIX, isId, newId } from '../../kernel/ids.ts';
import { Secret } from '../../kernel/secret.ts';
import type { Database } from '../../store/schema.ts';
import { ApiKeyErrors } from './errors.ts';

/**
 * API keys for shop backends. A key is shown once (`ck_<id>_<secret>`), stored as an HMAC-SHA256
 * of its secret under a key derived from the root (a keyed hash: a stolen table does not let
 * anyone test guesses offline), scoped to purposes, and revocable at once: every request checks
 * the stored row, there is no cache to go stale. (Medusa API keys; ASVS 6.4.x, 13.3.x)
 */
export interface ApiKeyInfo {
  readonly id: string;
  readonly name: string;
  readonly purposes: readonly string[];
  readonly created_at: string;
  readonly revoked_at: string | null;
}

export interface ApiKeyService {
  create(input: { name: string; purposes: readonly string[] }): Promise<{ key: Secret<string>; info: ApiKeyInfo }>;
  list(): Promise<ApiKeyInfo[]>;
  revoke(id: string): Promise<ApiKeyInfo>;
  /** The key's identity and scope, or APIKEY_INVALID for anything else (malformed, unknown, revoked). */
  verify(presented: string): Promise<ApiKeyInfo>;
}

const TOKEN = /^ck_([0-9A-HJKMNP-TV-Z]{26})_([A-Za-z0-9_-]{43})$/;
// A fixed digest to compare against when the id is unknown, so that both paths do the same work.
const DUMMY = Buffer.alloc(32);

export function createApiKeyService(deps: { db: Kysely<Database>; hashKey: KeyObject; clock: Clock }): ApiKeyService {
  const { db, hashKey, clock } = deps;
  // The one query on every request, compiled once (Kysely otherwise builds and compiles it per call).
  const byIdSql = db.selectFrom('api_keys').selectAll().where('id', '=', '').compile().sql;
  const digest = (secret: string) => createHmac('sha256', hashKey).update(secret, 'utf8').digest();
  const toInfo = (r: Database['api_keys']): ApiKeyInfo => ({
    id: r.id,
    name: r.name,
    purposes: JSON.parse(r.purposes) as string[],
    created_at: r.created_at,
    revoked_at: r.revoked_at,
  });

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
      };
      await db.insertInto('api_keys').values(row).execute();
      return { key: new Secret(`ck_${id.slice(ID_PREFIX.apiKey.length + 1)}_${secret}`), info: toInfo(row) };
    },

    async list() {
      const rows = await db.selectFrom('api_keys').selectAll().orderBy('created_at').orderBy('id').execute();
      return rows.map(toInfo);
    },

    async revoke(id) {
      if (!isId(ID_PREFIX.apiKey, id)) fail(ApiKeyErrors.APIKEY_NOT_FOUND, 'no API key with that id');
      await db
        .updateTable('api_keys')
        .set({ revoked_at: clock.now().toISOString() })
        .where('id', '=', id)
        .where('revoked_at', 'is', null)
        .execute();
      const row = await db.selectFrom('api_keys').selectAll().where('id', '=', id).executeTakeFirst();
      if (row === undefined) fail(ApiKeyErrors.APIKEY_NOT_FOUND, 'no API key with that id');
      return toInfo(row);
    },

    async verify(presented) {
      const m = TOKEN.exec(presented);
      if (m === null) fail(ApiKeyErrors.APIKEY_INVALID, 'invalid API key');
      const id = `${ID_PREFIX.apiKey}_${m[1]!}`;
      const row = (await db.executeQuery<Database['api_keys']>(CompiledQuery.raw(byIdSql, [id]))).rows[0];
      const expected = row === undefined ? DUMMY : Buffer.from(row.secret_hash, 'base64url');
      const matches = timingSafeEqual(digest(m[2]!), expected.length === 32 ? expected : DUMMY);
      if (row === undefined || !matches || row.revoked_at !== null) fail(ApiKeyErrors.APIKEY_INVALID, 'invalid API key');
      return toInfo(row);
    },
  };
}
