import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { fail } from '../kernel/errors.ts';
import type { Realm } from '../modules/identity/passwords/password-policy.ts';
import { SessionErrors } from '../modules/identity/sessions/session-errors.ts';
import type { FailureBudget } from '../modules/identity/throttling/auth-failures.ts';
import type { Resolution, SessionService, SessionView } from '../modules/identity/sessions/session-service.ts';
import { checkOrigin } from './csrf.ts';

/**
 * Session cookies and the hook that turns a presented session into `request.authSession`.
 * Cookies are `__Host-` prefixed (so Secure, Path=/ and no Domain are enforced by the browser and
 * no sibling subdomain can plant one: cookie tossing), HttpOnly, SameSite (Lax for customers, so a
 * link from a mail into the privacy center keeps the session; Strict for staff) — ASVS 3.3.1–3.3.4.
 * A non-browser client may send the token as `Authorization: Bearer cs_…` instead; such requests
 * skip the origin check, because no browser attaches that header on its own (see csrf.ts).
 */
export const SESSION_COOKIE: Readonly<Record<Realm, string>> = { customer: '__Host-custos_session', staff: '__Host-custos_staff' };
export const MFA_COOKIE: Readonly<Record<Realm, string>> = { customer: '__Host-custos_mfa', staff: '__Host-custos_staff_mfa' };
const SAME_SITE: Readonly<Record<Realm, 'Lax' | 'Strict'>> = { customer: 'Lax', staff: 'Strict' };

export interface AuthSession {
  readonly session: SessionView;
  readonly via: 'cookie' | 'bearer';
}

declare module 'fastify' {
  interface FastifyRequest {
    authSession: AuthSession | null;
  }
}

/** The first value of a cookie; undefined when absent. Values are never logged. */
export function readCookie(request: FastifyRequest, name: string): string | undefined {
  const header = request.headers.cookie;
  if (typeof header !== 'string' || header.length > 8192) return undefined;
  for (const part of header.split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    if (part.slice(0, eq).trim() !== name) continue;
    const value = part.slice(eq + 1).trim();
    return value.startsWith('"') && value.endsWith('"') ? value.slice(1, -1) : value;
  }
  return undefined;
}

export function setCookie(reply: FastifyReply, realm: Realm, name: string, value: string, maxAgeSeconds: number): void {
  reply.header(
    'set-cookie',
    `${name}=${value}; Path=/; Secure; HttpOnly; SameSite=${SAME_SITE[realm]}; Max-Age=${Math.max(0, Math.floor(maxAgeSeconds))}`,
  );
}

export function clearCookie(reply: FastifyReply, realm: Realm, name: string): void {
  reply.header('set-cookie', `${name}=; Path=/; Secure; HttpOnly; SameSite=${SAME_SITE[realm]}; Max-Age=0`);
}

/** `Authorization: Bearer cs_…` (a session token, not an API key), if sent. */
export function bearerSessionToken(request: FastifyRequest): string | undefined {
  const m = /^Bearer\s+(cs_\S+)$/i.exec(request.headers.authorization ?? '');
  return m?.[1];
}

/** The session token a request presents for a realm, and how. */
export function presentedSession(request: FastifyRequest, realm: Realm): { token: string; via: 'cookie' | 'bearer' } | undefined {
  const bearer = bearerSessionToken(request);
  if (bearer !== undefined) return { token: bearer, via: 'bearer' };
  const cookie = readCookie(request, SESSION_COOKIE[realm]);
  return cookie === undefined || cookie === '' ? undefined : { token: cookie, via: 'cookie' };
}

export interface SessionHookOptions {
  readonly sessions: SessionService;
  readonly realm: Realm;
  readonly publicOrigin: string | undefined;
  /** Called for a known session that is expired or revoked (audit: session_expired, session_use_after_expire). */
  readonly onRejected?: (request: FastifyRequest, resolution: Resolution & { ok: false }) => Promise<void>;
  /** Failed authentications per client address: a session that is presented and not live counts. */
  readonly failures?: FailureBudget | undefined;
}

/**
 * Resolves the realm's session on every request of the scope (optional: routes that need one call
 * `requireSession`), after the origin check: cookie-borne unsafe requests must prove their origin,
 * requests without any session must at least not come from another origin (login CSRF). A dead
 * cookie is cleared in the answer. With `failures`, a presented session is not even looked up
 * from an address blocked for failed authentications, and one that is not live counts against
 * the client address.
 */
export function resolveSessions(app: FastifyInstance, options: SessionHookOptions): void {
  const { sessions, realm, publicOrigin } = options;
  app.decorateRequest('authSession', null);
  app.addHook('onRequest', async (request, reply) => {
    const presented = presentedSession(request, realm);
    if (presented?.via !== 'bearer') checkOrigin(request, { publicOrigin, requireEvidence: presented !== undefined });
    if (presented === undefined) return;
    options.failures?.admit(request.ip);
    const resolution = await sessions.resolve(realm, presented.token);
    if (resolution.ok) {
      request.authSession = { session: resolution.session, via: presented.via };
      return;
    }
    if (presented.via === 'cookie') clearCookie(reply, realm, SESSION_COOKIE[realm]);
    if (options.onRejected !== undefined) await options.onRejected(request, resolution);
    await options.failures?.failed(request.ip);
  });
}

/** What a staff route answers when the request brings a customer session instead of a staff one. */
export const CUSTOMER_SESSION_ON_STAFF_ROUTE = 'this is a customer session; staff routes need a staff sign-in (or an API key)';

/**
 * True when the request presents a live customer session (cookie or bearer). A staff route that
 * found no staff session asks, so that its answer says "customer session" rather than "sign in".
 */
export async function presentsCustomerSession(request: FastifyRequest, sessions: Pick<SessionService, 'resolve'>): Promise<boolean> {
  const presented = presentedSession(request, 'customer');
  return presented !== undefined && (await sessions.resolve('customer', presented.token)).ok;
}

/** The request's live session, or IDENTITY_SESSION_REQUIRED (401). */
export function requireSession(request: FastifyRequest): AuthSession {
  if (request.authSession === null) fail(SessionErrors.IDENTITY_SESSION_REQUIRED, 'sign in first');
  return request.authSession;
}
