import rateLimit from '@fastify/rate-limit';
import type { FastifyInstance, FastifyPluginAsync, FastifyRequest } from 'fastify';
import type { Redis } from 'ioredis';
import { checkOrigin } from '../../../http/csrf.ts';
import { CUSTOMER_SESSION_ON_STAFF_ROUTE, presentedSession, presentsCustomerSession, resolveSessions, type SessionHookOptions } from '../../../http/session.ts';
import { fail } from '../../../kernel/errors.ts';
import type { Runtime } from '../../../runtime.ts';
import type { Actor } from '../../policy/service.ts';
import { StaffErrors } from '../../staff/errors.ts';
import { registerStaffInvitationRoutes } from '../../staff/routes.ts';
import type { Realm } from '../passwords/password-policy.ts';
import { registerAccountRoutes } from './routes-account.ts';
import { registerAuthRoutes } from './routes-auth.ts';
import { registerFactorRoutes } from './routes-factors.ts';
import { registerMeRoutes } from './routes-me.ts';
import { SessionErrors } from '../sessions/session-errors.ts';
import { staffActorOf, staffContextOf } from '../sessions/session-staff.ts';
import { throttleSubject } from '../throttling/client-address.ts';

/**
 * The HTTP side of identity, each realm in its own Fastify scope so that no hook leaks into
 * another (CONVENTIONS: public and admin scopes): customers under /v1/auth and /v1/me, staff under
 * /v1/staff/auth, and a scope for the staff capability's routes with `request.staff` set from the
 * staff session. Every scope is rate-limited per client address (IPv6 per /64), and a session
 * that is presented and not live counts against the address's budget of failed authentications.
 */
type Deps = Pick<Runtime, 'identity' | 'staff' | 'vault' | 'inventory' | 'clock' | 'config' | 'audit'> & Partial<Pick<Runtime, 'exports'>>;

function limits(runtime: Deps, redis: Redis | undefined) {
  return {
    max: runtime.config.rateLimitPerMinute,
    timeWindow: 60_000,
    keyGenerator: (request: FastifyRequest) => throttleSubject(request.ip),
    ...(redis === undefined ? {} : { redis, nameSpace: 'custos-rl-auth-' }),
  };
}

/** Audits the use of a known session that can no longer be used (first use at once, then per-minute summaries). */
function onRejected(runtime: Deps): SessionHookOptions['onRejected'] {
  return async (request, resolution) => {
    if (resolution.reason !== 'expired' && resolution.reason !== 'revoked') return;
    await runtime.identity.deadSession(resolution, request.id);
  };
}

function sessionOptions(runtime: Deps, realm: Realm): SessionHookOptions {
  return {
    sessions: runtime.identity.sessions,
    realm,
    publicOrigin: runtime.config.publicUrl,
    onRejected: onRejected(runtime),
    failures: runtime.identity.authFailures,
  };
}

/** Customer and staff sign-in, and the customer's own data. */
export async function registerIdentityRoutes(
  app: FastifyInstance,
  runtime: Deps,
  redis?: Redis,
  /** Other capabilities' routes under /v1/me, registered in the customer session scope. */
  meRoutes?: (customers: FastifyInstance) => void,
): Promise<void> {
  const exports = runtime.exports;
  const deps = {
    identity: runtime.identity,
    clock: runtime.clock,
    publicOrigin: runtime.config.publicUrl,
    vault: runtime.vault,
    inventory: runtime.inventory,
    ...(exports === undefined ? {} : { dataExports: (customerId: string) => exports.usable(customerId) }),
  };

  await app.register(async (customers) => {
    await customers.register(rateLimit, limits(runtime, redis));
    resolveSessions(customers, sessionOptions(runtime, 'customer'));
    registerAuthRoutes(customers, deps, 'customer', '/v1/auth');
    registerAccountRoutes(customers, deps, 'customer', '/v1/auth');
    registerFactorRoutes(customers, deps, 'customer', '/v1/auth');
    registerMeRoutes(customers, deps);
    meRoutes?.(customers);
  });

  await app.register(async (staff) => {
    await staff.register(rateLimit, limits(runtime, redis));
    resolveSessions(staff, sessionOptions(runtime, 'staff'));
    registerAuthRoutes(staff, deps, 'staff', '/v1/staff/auth');
    registerAccountRoutes(staff, deps, 'staff', '/v1/staff/auth');
    registerFactorRoutes(staff, deps, 'staff', '/v1/staff/auth');
    registerStaffInvitationRoutes(staff, { staff: runtime.staff });
  });
}

/**
 * A scope for the staff capability's routes: `request.staff` is set from a live, MFA-verified
 * staff session (cookie with the origin check, or bearer); without a session it stays null and the
 * routes answer STAFF_SESSION_REQUIRED; a session without a verified second factor is refused
 * with STAFF_MFA_REQUIRED before any route runs.
 */
export function staffScope(runtime: Deps, redis: Redis | undefined, routes: (api: FastifyInstance) => void): FastifyPluginAsync {
  return async (api) => {
    await api.register(rateLimit, limits(runtime, redis));
    resolveSessions(api, sessionOptions(runtime, 'staff'));
    api.decorateRequest('staff', null);
    api.addHook('preHandler', async (request) => {
      const auth = request.authSession;
      if (auth === null) {
        if (await presentsCustomerSession(request, runtime.identity.sessions)) fail(StaffErrors.STAFF_SESSION_REQUIRED, CUSTOMER_SESSION_ON_STAFF_ROUTE);
        return;
      }
      request.staff = await staffContextOf(auth.session, { staff: runtime.staff, audit: runtime.audit, sessions: runtime.identity.sessions, requestId: request.id });
    });
    routes(api);
  };
}

/**
 * For the vault's auth hook (src/http/auth.ts): a staff session, when the request carries one and
 * no API key, becomes the request's actor. A cookie-borne unsafe request must prove its origin
 * (CSRF); a customer session is never looked at here, so a customer can never reach the API-key
 * routes. A staff session that was sent but is dead answers IDENTITY_SESSION_REQUIRED.
 */
export function staffVaultActor(runtime: Deps): (request: FastifyRequest) => Promise<Actor | undefined> {
  return async (request) => {
    const presented = presentedSession(request, 'staff');
    if (presented === undefined) return undefined;
    if (presented.via === 'cookie') checkOrigin(request, { publicOrigin: runtime.config.publicUrl, requireEvidence: true });
    const resolution = await runtime.identity.sessions.resolve('staff', presented.token);
    if (!resolution.ok) {
      await onRejected(runtime)?.(request, resolution);
      if (resolution.reason === 'unknown' && (await presentsCustomerSession(request, runtime.identity.sessions)))
        fail(SessionErrors.IDENTITY_SESSION_REQUIRED, CUSTOMER_SESSION_ON_STAFF_ROUTE);
      fail(SessionErrors.IDENTITY_SESSION_REQUIRED, 'the staff session is unknown, expired or revoked; sign in again');
    }
    return staffActorOf(resolution.session, { staff: runtime.staff, audit: runtime.audit, sessions: runtime.identity.sessions, requestId: request.id });
  };
}
