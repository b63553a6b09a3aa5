import { createHmac, createSecretKey, hkdfSync, type KeyObject } from 'node:crypto';
import { open, seal } from '../crypto/aead.ts';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import { fail } from '../kernel/errors.ts';
import type { Clock } from '../kernel/clock.ts';
import type { Logger } from '../kernel/logger.ts';
import type { Database } from '../store/schema.ts';
import { HttpErrors } from './errors.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * The route honours `Idempotency-Key` (registerIdempotency). `'sealed'`: its whole successful
     * answer is kept, sealed (AES-256-GCM under a key derived from the idempotency key), so that a
     * retry gets it back and the route does not run twice (the card relay: never charge twice).
     */
    idempotent?: boolean | 'sealed';
  }
  interface FastifyRequest {
    idempotency?: { callerRef: string; keyHash: string } | undefined;
  }
}

/**
 * `Idempotency-Key` (IETF draft-ietf-httpapi-idempotency-key-header) for routes that opt in with
 * `config: { idempotent: true }`. A key is the caller's (API key, staff session) and lasts 24
 * hours: a retry of the same request (method, path, validated body) gets the first answer again
 * and does nothing twice; the same key with another request is 422; a retry while the first is
 * still running is 409. Only successful answers are kept; after a refusal the key is free again.
 *
 * Nothing personal is stored: the key and the request only as HMAC-SHA256 under a key of this
 * service, and an answer only when it holds nothing but ids, status words and timestamps (the
 * vault's `{ "id" }`); any other answer is sent but not kept, and its key is released.
 */
export const IDEMPOTENCY_TTL_MS = 24 * 3_600_000;

/** The request header, for the schema of each route that opts in. */
export const idempotencyKeyHeader = {
  'idempotency-key': z
    .string()
    .max(257)
    .optional()
    .meta({ description: 'Makes a retry safe: the same key and request within 24 hours return the first answer and do nothing twice.' }),
};
/** A first request still marked in flight after this long died with its process; its key is freed. */
const ABANDONED_MS = 120_000;
const SWEEP_EVERY_MS = 10 * 60_000;
/** Marks a kept answer sealed by `sealAnswer`. */
const SEALED = 'sealed:';
/** Sign-in, MFA and factor answers carry secrets: routes under these prefixes may never opt in. */
const NEVER = /^\/v1\/(?:staff\/)?auth(?:\/|$)/;

export type Begin =
  | { readonly kind: 'new'; readonly keyHash: string }
  | { readonly kind: 'replay'; readonly status: number; readonly response: string }
  | { readonly kind: 'in_flight' }
  | { readonly kind: 'mismatch' };

export interface IdempotencyStore {
  begin(callerRef: string, key: string, request: string): Promise<Begin>;
  complete(callerRef: string, keyHash: string, status: number, response: string): Promise<void>;
  /** A whole answer, sealed to this caller and key, for `complete`; `openAnswer` reverses it (undefined when altered). */
  sealAnswer(callerRef: string, keyHash: string, response: string): string;
  openAnswer(callerRef: string, keyHash: string, stored: string): string | undefined;
  release(callerRef: string, keyHash: string): Promise<void>;
  sweep(): Promise<number>;
}

export function createIdempotencyStore(deps: { db: Kysely<Database>; clock: Clock; key: KeyObject }): IdempotencyStore {
  const { db, clock } = deps;
  const mac = (label: string, value: string) => createHmac('sha256', deps.key).update(`${label}\0${value}`).digest('base64url');
  let lastSweep = 0;
  const answerKey = createSecretKey(Buffer.from(hkdfSync('sha256', deps.key.export(), Buffer.alloc(0), 'custos:idempotency-answer', 32)));
  const answerAad = (callerRef: string, keyHash: string) => `custos:idempotency-answer|${callerRef}|${keyHash}`;
  const table = (callerRef: string, keyHash: string) =>
    db.deleteFrom('idempotency_keys').where('caller_ref', '=', callerRef).where('key_hash', '=', keyHash);

  const store: IdempotencyStore = {
    async begin(callerRef, key, request) {
      const now = clock.now();
      if (now.getTime() - lastSweep > SWEEP_EVERY_MS) {
        lastSweep = now.getTime();
        await store.sweep();
      }
      const keyHash = mac('key', key);
      const requestHash = mac('request', request);
      for (let attempt = 0; attempt < 3; attempt++) {
        const inserted = await db
          .insertInto('idempotency_keys')
          .values({
            caller_ref: callerRef,
            key_hash: keyHash,
            request_hash: requestHash,
            status: null,
            response: null,
            created_at: now.toISOString(),
            expires_at: new Date(now.getTime() + IDEMPOTENCY_TTL_MS).toISOString(),
          })
          .onConflict((oc) => oc.columns(['caller_ref', 'key_hash']).doNothing())
          .executeTakeFirst();
        if (Number(inserted.numInsertedOrUpdatedRows ?? 0n) > 0) return { kind: 'new', keyHash };
        const row = await db.selectFrom('idempotency_keys').selectAll().where('caller_ref', '=', callerRef).where('key_hash', '=', keyHash).executeTakeFirst();
        if (row === undefined) continue;
        const expired = row.expires_at <= now.toISOString();
        const abandoned = row.status === null && row.created_at <= new Date(now.getTime() - ABANDONED_MS).toISOString();
        if (expired || abandoned) {
          await table(callerRef, keyHash).where('created_at', '=', row.created_at).execute();
          continue;
        }
        if (row.request_hash !== requestHash) return { kind: 'mismatch' };
        if (row.status === null || row.response === null) return { kind: 'in_flight' };
        const response = store.openAnswer(callerRef, keyHash, row.response);
        // A kept answer that no longer opens (altered) is never replayed, and the request not run again.
        if (response === undefined) return { kind: 'in_flight' };
        return { kind: 'replay', status: row.status, response };
      }
      return { kind: 'in_flight' };
    },
    async complete(callerRef, keyHash, status, response) {
      await db
        .updateTable('idempotency_keys')
        .set({ status, response })
        .where('caller_ref', '=', callerRef)
        .where('key_hash', '=', keyHash)
        .where('status', 'is', null)
        .execute();
    },
    sealAnswer(callerRef, keyHash, response) {
      return `${SEALED}${seal(answerKey, Buffer.from(response, 'utf8'), answerAad(callerRef, keyHash)).toString('base64url')}`;
    },
    openAnswer(callerRef, keyHash, stored) {
      if (!stored.startsWith(SEALED)) return stored;
      return open(answerKey, Buffer.from(stored.slice(SEALED.length), 'base64url'), answerAad(callerRef, keyHash))?.toString('utf8');
    },
    async release(callerRef, keyHash) {
      await table(callerRef, keyHash).where('status', 'is', null).execute();
    },
    async sweep() {
      const done = await db.deleteFrom('idempotency_keys').where('expires_at', '<=', clock.now().toISOString()).executeTakeFirst();
      return Number(done.numDeletedRows);
    },
  };
  return store;
}

/** The key from the header: a structured-field string (`"…"`, the draft's form) or a bare token. */
export function parseIdempotencyKey(header: string): string | undefined {
  const quoted = /^"([\x20-\x21\x23-\x5b\x5d-\x7e]{1,255})"$/.exec(header);
  if (quoted !== null) return quoted[1];
  return /^[\x21\x23-\x7e]{1,255}$/.test(header) ? header : undefined;
}

const ID = /^[a-z]{2,5}_[0-9A-HJKMNP-TV-Z]{26}$/;
const WORD = /^[a-z][a-z_]{0,39}$/;
const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,3})?Z$/;

/** An answer that holds only ids, status words and timestamps (so it may be kept): `{ "id": "cus_…" }`. */
export function holdsOnlyIds(payload: string): boolean {
  let value: unknown;
  try {
    value = JSON.parse(payload);
  } catch {
    return false;
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  return Object.entries(value).every(([k, v]) => WORD.test(k) && typeof v === 'string' && (ID.test(v) || WORD.test(v) || TIMESTAMP.test(v)));
}

type Hooks<T> = T | T[] | undefined;
const list = <T>(hooks: Hooks<T>): T[] => (hooks === undefined ? [] : Array.isArray(hooks) ? hooks : [hooks]);

/**
 * Adds the two hooks to each route that opts in (and to no other route, which pays nothing). Call
 * on the root instance before any route is registered. The hooks run after authentication
 * (onRequest in the scopes) and validation, so the key belongs to a known caller and the request
 * is compared as validated.
 */
export function registerIdempotency(app: FastifyInstance, deps: { store: IdempotencyStore; logger: Logger }): void {
  const preHandler = async (request: FastifyRequest, reply: FastifyReply) => {
    const header = request.headers['idempotency-key'];
    if (header === undefined) return;
    const callerRef = request.actor?.ref;
    if (callerRef === undefined) return;
    const key = typeof header === 'string' ? parseIdempotencyKey(header) : undefined;
    if (key === undefined) fail(HttpErrors.IDEMPOTENCY_KEY_MALFORMED, 'Idempotency-Key must be 1 to 255 visible ASCII characters');
    const fingerprint = `${request.method}\n${request.url}\n${JSON.stringify(request.body ?? null)}`;
    const begun = await deps.store.begin(callerRef, key, fingerprint);
    if (begun.kind === 'mismatch') fail(HttpErrors.IDEMPOTENCY_KEY_REUSED, 'this Idempotency-Key was used for a different request');
    if (begun.kind === 'in_flight') fail(HttpErrors.IDEMPOTENCY_KEY_IN_FLIGHT, 'a request with this Idempotency-Key is still being processed');
    if (begun.kind === 'replay') return reply.code(begun.status).header('idempotent-replayed', 'true').type('application/json; charset=utf-8').send(begun.response);
    request.idempotency = { callerRef, keyHash: begun.keyHash };
  };
  const onSend = async (request: FastifyRequest, reply: FastifyReply, payload: unknown) => {
    const held = request.idempotency;
    if (held === undefined) return payload;
    request.idempotency = undefined;
    const ok = reply.statusCode >= 200 && reply.statusCode < 300;
    try {
      if (ok && typeof payload === 'string' && holdsOnlyIds(payload)) {
        await deps.store.complete(held.callerRef, held.keyHash, reply.statusCode, payload);
        return payload;
      }
      if (ok && typeof payload === 'string' && request.routeOptions.config.idempotent === 'sealed') {
        await deps.store.complete(held.callerRef, held.keyHash, reply.statusCode, deps.store.sealAnswer(held.callerRef, held.keyHash, payload));
        return payload;
      }
      if (ok) deps.logger.warn({ route: request.routeOptions.url }, 'idempotent route answered more than ids; the answer was not kept');
      await deps.store.release(held.callerRef, held.keyHash);
    } catch {
      deps.logger.warn({ route: request.routeOptions.url }, 'idempotency key could not be updated; it is freed when it expires');
    }
    return payload;
  };
  app.addHook('onRoute', (route) => {
    if (route.config?.idempotent !== true && route.config?.idempotent !== 'sealed') return;
    if (NEVER.test(route.url)) throw new Error(`${route.url}: sign-in, MFA and factor routes cannot honour Idempotency-Key (their answers carry secrets)`);
    route.preHandler = [...list(route.preHandler as Hooks<typeof preHandler>), preHandler] as typeof route.preHandler;
    route.onSend = [...list(route.onSend as Hooks<typeof onSend>), onSend] as typeof route.onSend;
  });
}
