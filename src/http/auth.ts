import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError, fail } from '../kernel/errors.ts';
import { ApiKeyErrors } from '../modules/apikeys/errors.ts';
import type { ApiKeyService } from '../modules/apikeys/service.ts';
import type { FailureBudget } from '../modules/identity/throttling/auth-failures.ts';
import { throttleSubject } from '../modules/identity/throttling/client-address.ts';
import type { Actor } from '../modules/policy/service.ts';

declare module 'fastify' {
  interface FastifyRequest {
    actor: Actor | null;
  }
}

/**
 * `Authorization: Bearer <api key>` → the request's actor, or 401 before any handler runs. With
 * `sessionActor`, a request that carries no API key may instead be authenticated by a session
 * (a staff session: cookie with the origin check, or bearer); it returns undefined when the request
 * presents none, and the API-key rules apply as before.
 *
 * With `failures`, an address blocked for failed authentications is refused before anything it
 * presents is looked at, and every credential that is presented and not accepted (bad or unknown
 * API key, garbage bearer, dead staff session) counts against the client address, never against
 * the key id it names. A request that presents nothing is told so and counts nothing.
 */
export function requireApiKey(
  app: FastifyInstance,
  apiKeys: ApiKeyService,
  sessionActor?: (request: FastifyRequest) => Promise<Actor | undefined>,
  failures?: FailureBudget,
): void {
  app.decorateRequest('actor', null);

  async function authenticate(request: FastifyRequest): Promise<Actor> {
    if (sessionActor !== undefined && !/^Bearer\s+ck_/i.test(request.headers.authorization ?? '')) {
      const actor = await sessionActor(request);
      if (actor !== undefined) return actor;
    }
    const header = request.headers.authorization;
    if (header === undefined || header === '') fail(ApiKeyErrors.APIKEY_MISSING, 'send Authorization: Bearer <api key>');
    const [scheme, token] = header.split(' ', 2);
    if (scheme?.toLowerCase() !== 'bearer' || token === undefined) fail(ApiKeyErrors.APIKEY_INVALID, 'invalid API key');
    const key = await apiKeys.verify(token);
    return { ref: `apikey:${key.id}`, kind: 'apikey', purposes: key.purposes };
  }

  app.addHook('onRequest', async (request: FastifyRequest) => {
    failures?.admit(request.ip);
    try {
      request.actor = await authenticate(request);
    } catch (error) {
      if (failures !== undefined && error instanceof AppError && error.status === 401 && error.code !== ApiKeyErrors.APIKEY_MISSING.code)
        await failures.failed(request.ip);
      throw error;
    }
  });
}

export function actorOf(request: FastifyRequest): Actor {
  if (request.actor === null) fail(ApiKeyErrors.APIKEY_MISSING, 'send Authorization: Bearer <api key>');
  return request.actor;
}

/**
 * What the per-key request limit counts against: the actor authentication verified (an API key, a
 * staff session's member), or the client address (IPv6 by /64) when there is none. Never a key
 * id read from an unverified header: `<another key's id>_garbage` must not spend that key's budget.
 */
export function rateLimitKey(request: FastifyRequest): string {
  return request.actor === null ? `ip:${throttleSubject(request.ip)}` : request.actor.ref;
}
