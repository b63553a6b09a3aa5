import type { FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { clearCookie, MFA_COOKIE, SESSION_COOKIE, setCookie, type AuthSession } from '../../../http/session.ts';
import { fail } from '../../../kernel/errors.ts';
import type { Secret } from '../../../kernel/secret.ts';
import type { Realm } from '../passwords/password-policy.ts';
import { deviceLabel } from '../sessions/session-device.ts';
import { SessionErrors } from '../sessions/session-errors.ts';
import type { SessionService, SessionView } from '../sessions/session-service.ts';

/**
 * Shapes and helpers shared by the sign-in route files. Bodies are bounded (an over-long password
 * still reaches the policy, which answers IDENTITY_PASSWORD_TOO_LONG rather than a schema error);
 * answers declare every field, so nothing undeclared — a hash, an email — is ever serialised.
 */
export const errorBody = z.object({ error: z.object({ code: z.string(), message: z.string(), request_id: z.string() }).loose() });
export const authErrors = { 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody, 409: errorBody, 423: errorBody, 429: errorBody, 503: errorBody };

export const emailField = z.string().max(320);
export const passwordField = z.string().max(4096);
export const delivery = z
  .enum(['cookie', 'token'])
  .default('cookie')
  .meta({ description: "'cookie' (browsers: HttpOnly __Host- cookie) or 'token' (other clients: the token in the body, sent back as Authorization: Bearer)." });

export const sessionOut = z
  .object({
    id: z.string(),
    realm: z.enum(['customer', 'staff']),
    created_at: z.string(),
    authenticated_at: z.string(),
    mfa_verified_at: z.string().nullable(),
    last_seen_at: z.string(),
    expires_at: z.string(),
    idle_expires_at: z.string(),
    device: z.string(),
  })
  .meta({ id: 'Session' });

export const sessionIssued = z.object({
  mfa_required: z.literal(false),
  session: sessionOut,
  /** Only with session_delivery 'token' or when the request authenticated by bearer. */
  token: z.string().optional(),
});

export function sessionView(s: SessionView) {
  return {
    id: s.id,
    realm: s.realm,
    created_at: s.createdAt,
    authenticated_at: s.authenticatedAt,
    mfa_verified_at: s.mfaVerifiedAt,
    last_seen_at: s.lastSeenAt,
    expires_at: s.expiresAt,
    idle_expires_at: s.idleExpiresAt,
    device: s.device,
  };
}

/**
 * Hands a new session token to the client the way it asked (or the way it authenticated): a
 * cookie that lives until the absolute limit, or the token in the body. Clears any MFA cookie.
 */
export function deliver(
  reply: FastifyReply,
  realm: Realm,
  issued: { token: Secret<string>; session: SessionView },
  how: 'cookie' | 'token',
  now: Date,
): z.infer<typeof sessionIssued> {
  reply.header('cache-control', 'no-store');
  if (how === 'token') return { mfa_required: false, session: sessionView(issued.session), token: issued.token.reveal() };
  setCookie(reply, realm, SESSION_COOKIE[realm], issued.token.reveal(), (Date.parse(issued.session.expiresAt) - now.getTime()) / 1000);
  return { mfa_required: false, session: sessionView(issued.session) };
}

export function dropCookies(reply: FastifyReply, realm: Realm): void {
  clearCookie(reply, realm, SESSION_COOKIE[realm]);
  clearCookie(reply, realm, MFA_COOKIE[realm]);
}

/** Sensitive actions need a password or passkey check within CUSTOS_REAUTH_MINUTES (ASVS 7.5.1). */
export function requireRecent(sessions: SessionService, auth: AuthSession): void {
  if (!sessions.isRecent(auth.session))
    fail(SessionErrors.IDENTITY_REAUTH_REQUIRED, 'confirm your password first (step-up)', {
      within_seconds: Math.round(sessions.policy.reauthMs / 1000),
    });
}

/** The coarse device label of the request (never the User-Agent itself). */
export function device(request: FastifyRequest): string {
  const ua = request.headers['user-agent'];
  return deviceLabel(typeof ua === 'string' ? ua : undefined);
}

/** Where a route's answer sends the new session: as asked at sign-in, or as the request authenticated. */
export function deliveryOf(auth: AuthSession): 'cookie' | 'token' {
  return auth.via === 'bearer' ? 'token' : 'cookie';
}
