import type { FastifyInstance, FastifyRequest } from 'fastify';
import { AppError, fail } from '../kernel/errors.ts';
import { sourceOf, type SecurityEvents } from '../kernel/security-events.ts';
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
 *
 * With `security`, each use of an API key (`apikey.use`) and each credential refused
 * (`apikey.auth_fail`, with the refusal's code) is a security event with the client address, for
 * detection (a decoy key's use, a guessing source); the audit log does not record key uses.
 */
export function requireApiKey(
  app: FastifyInstance,
  apiKeys: ApiKeyService,
  sessionActor?: (request: FastifyRequest) => Promise<Actor | undefined>,
  failures?: FailureBudget,
  security?: { readonly events: SecurityEvents; readonly now: () => Date },
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
      const refused = error instanceof AppError && error.code !== ApiKeyErrors.APIKEY_MISSING.code && (error.status === 401 || error.code === ApiKeyErrors.APIKEY_SUSPENDED.code);
      if (refused && security !== undefined)
        security.events.emit({ at: security.now(), action: 'apikey.auth_fail', outcome: 'failure', source: sourceOf(request.ip), requestId: request.id, detail: { code: error.code } });
      if (failures !== undefined && refused && error.status === 401) await failures.failed(request.ip);
      throw error;
    }
    if (security !== undefined && request.actor.kind === 'apikey')
      security.events.emit({ at: security.now(), action: 'apikey.use', outcome: 'success', actor: request.actor.ref, source: sourceOf(request.ip), requestId: request.id });
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
