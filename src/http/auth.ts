import type { FastifyInstance, FastifyRequest } from 'fastify';
import { fail } from '../kernel/errors.ts';
import { ApiKeyErrors } from '../modules/apikeys/errors.ts';
import type { ApiKeyService } from '../modules/apikeys/service.ts';
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
 */
export function requireApiKey(
  app: FastifyInstance,
  apiKeys: ApiKeyService,
  sessionActor?: (request: FastifyRequest) => Promise<Actor | undefined>,
): void {
  app.decorateRequest('actor', null);
  app.addHook('onRequest', async (request: FastifyRequest) => {
    if (sessionActor !== undefined && !/^Bearer\s+ck_/i.test(request.headers.authorization ?? '')) {
      const actor = await sessionActor(request);
      if (actor !== undefined) {
        request.actor = actor;
        return;
      }
    }
    const header = request.headers.authorization;
    if (header === undefined || header === '') fail(ApiKeyErrors.APIKEY_MISSING, 'send Authorization: Bearer <api key>');
    const [scheme, token] = header.split(' ', 2);
    if (scheme?.toLowerCase() !== 'bearer' || token === undefined) fail(ApiKeyErrors.APIKEY_INVALID, 'invalid API key');
    const key = await apiKeys.verify(token);
    request.actor = { ref: `apikey:${key.id}`, kind: 'apikey', purposes: key.purposes };
  });
}

export function actorOf(request: FastifyRequest): Actor {
  if (request.actor === null) fail(ApiKeyErrors.APIKEY_MISSING, 'send Authorization: Bearer <api key>');
  return request.actor;
}

/** The key id part of a bearer token, for per-key rate limits (before the key is verified). */
export function bearerKeyId(request: FastifyRequest): string | undefined {
  const header = request.headers.authorization;
  const m = header === undefined ? null : /^Bearer ck_([0-9A-Z]{26})_/i.exec(header);
  return m?.[1];
}
