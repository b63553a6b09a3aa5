import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { MFA_COOKIE, readCookie, requireSession, type AuthSession } from '../../../http/session.ts';
import type { Clock } from '../../../kernel/clock.ts';
import { fail } from '../../../kernel/errors.ts';
import { Secret } from '../../../kernel/secret.ts';
import { AUTHN_EVENTS } from '../audit-events.ts';
import { IdentityErrors } from '../errors.ts';
import type { Realm } from '../passwords/password-policy.ts';
import { authErrors, deliver, deliveryOf, delivery, device, requireRecent, sessionIssued } from './routes-schemas.ts';
import { SessionErrors } from '../sessions/session-errors.ts';
import type { IdentityServices } from '../sessions/session-runtime.ts';

/**
 * Second factors: an authenticator app (TOTP) with recovery codes, and passkeys — as a second
 * factor, for step-up, and alone (passwordless). Adding or removing a factor needs a recent
 * step-up (ASVS 7.5.1) and rotates the session token (a privilege change, ASVS 7.2.4); each is
 * audited (`authn_mfa_enabled`, `authn_mfa_disabled`).
 */
export interface FactorRouteDeps {
  readonly identity: IdentityServices;
  readonly clock: Clock;
}

const codes = z.object({ recovery_codes: z.array(z.string()) });
const passkeyOut = z
  .object({
    id: z.string(),
    name: z.string().nullable(),
    device_type: z.string(),
    backed_up: z.boolean(),
    created_at: z.string(),
    last_used_at: z.string().nullable(),
  })
  .meta({ id: 'Passkey' });
const credentialParam = z.object({ id: z.string().regex(/^[A-Za-z0-9_-]{1,1024}$/) });

export function registerFactorRoutes(app: FastifyInstance, deps: FactorRouteDeps, realm: Realm, prefix: string): void {
  const { identity, clock } = deps;
  const { accounts, totp, recovery, passkeys, sessions, signIn, authn } = identity;
  const r = app.withTypeProvider<ZodTypeProvider>();
  const tags = [realm === 'staff' ? 'staff auth' : 'auth'];

  /** A privilege change: new token, second factor counted as verified in this session. */
  async function upgraded(auth: AuthSession) {
    const rotated = await sessions.rotate(auth.session, { mfaVerified: true });
    if (rotated === undefined) fail(SessionErrors.IDENTITY_SESSION_REQUIRED, 'the session ended; sign in again');
    return rotated;
  }

  async function recent(request: Parameters<typeof requireSession>[0]) {
    const auth = requireSession(request);
    requireRecent(sessions, auth);
    return { auth, account: await accounts.get(auth.session.accountId) };
  }

  r.post(`${prefix}/totp`, {
    schema: {
      tags,
      summary: 'Start enrolling an authenticator app (needs a recent step-up)',
      response: { 200: z.object({ otpauth_uri: z.string(), qr_code: z.string(), secret: z.string() }), ...authErrors },
    },
    handler: async (request) => {
      const { account } = await recent(request);
      const started = await totp.begin(account.id, account.email);
      return { otpauth_uri: started.otpauth_uri.reveal(), qr_code: started.qr_code.reveal(), secret: started.secret.reveal() };
    },
  });

  r.post(`${prefix}/totp/confirm`, {
    schema: {
      tags,
      summary: 'Turn the authenticator app on with its first code; returns ten recovery codes, shown once',
      body: z.object({ code: z.string().max(32) }).strict(),
      response: { 200: sessionIssued.extend(codes.shape), ...authErrors },
    },
    handler: async (request, reply) => {
      const { auth, account } = await recent(request);
      const { recoveryCodes } = await totp.confirm(account.id, new Secret(request.body.code));
      await authn(AUTHN_EVENTS.mfaEnabled, { account, outcome: 'success', requestId: request.id });
      const issued = deliver(reply, realm, await upgraded(auth), deliveryOf(auth), clock.now());
      return { ...issued, recovery_codes: [...recoveryCodes.reveal()] };
    },
  });

  r.delete(`${prefix}/totp`, {
    schema: { tags, summary: 'Turn the authenticator app off (needs a recent step-up)', response: { 200: sessionIssued, ...authErrors } },
    handler: async (request, reply) => {
      const { auth, account } = await recent(request);
      if (!(await totp.status(account.id)).enabled) fail(IdentityErrors.IDENTITY_TOTP_NOT_ENABLED, 'no authenticator app is turned on');
      await totp.disable(account.id);
      if ((await passkeys.list(account.id)).length === 0) await recovery.remove(account.id);
      await authn(AUTHN_EVENTS.mfaDisabled, { account, outcome: 'success', requestId: request.id });
      const rotated = await sessions.rotate(auth.session, {});
      if (rotated === undefined) fail(SessionErrors.IDENTITY_SESSION_REQUIRED, 'the session ended; sign in again');
      return deliver(reply, realm, rotated, deliveryOf(auth), clock.now());
    },
  });

  r.post(`${prefix}/recovery-codes`, {
    schema: { tags, summary: 'Replace the recovery codes with ten new ones (needs a recent step-up)', response: { 200: codes, ...authErrors } },
    handler: async (request) => {
      const { account } = await recent(request);
      if (!(await accounts.hasSecondFactor(account.id))) fail(IdentityErrors.IDENTITY_TOTP_NOT_ENABLED, 'turn on a second factor first');
      const fresh = await recovery.regenerate(account.id);
      await authn(AUTHN_EVENTS.mfaEnabled, { account, outcome: 'success', requestId: request.id });
      return { recovery_codes: [...fresh.reveal()] };
    },
  });

  r.get(`${prefix}/passkeys`, {
    schema: { tags, summary: "The account's passkeys", response: { 200: z.object({ data: z.array(passkeyOut) }), ...authErrors } },
    handler: async (request) => {
      const list = await passkeys.list(requireSession(request).session.accountId);
      return {
        data: list.map((p) => ({ id: p.credential_id, name: p.name, device_type: p.device_type, backed_up: p.backed_up, created_at: p.created_at, last_used_at: p.last_used_at })),
      };
    },
  });

  r.post(`${prefix}/passkeys/registration/options`, {
    schema: { tags, summary: 'WebAuthn options to register a passkey (needs a recent step-up)', response: { 200: z.record(z.string(), z.unknown()), ...authErrors } },
    handler: async (request) => {
      const { account } = await recent(request);
      return { ...(await passkeys.registrationOptions({ accountId: account.id, userName: account.email })) };
    },
  });

  r.post(`${prefix}/passkeys/registration`, {
    schema: {
      tags,
      summary: "Register a passkey with the browser's answer",
      body: z.object({ response: z.unknown(), name: z.string().trim().min(1).max(64).optional() }).strict(),
      response: { 200: sessionIssued.extend({ passkey: passkeyOut }), ...authErrors },
    },
    handler: async (request, reply) => {
      const { auth, account } = await recent(request);
      const p = await passkeys.verifyRegistration({ accountId: account.id, response: request.body.response, ...(request.body.name ? { name: request.body.name } : {}) });
      await authn(AUTHN_EVENTS.mfaEnabled, { account, outcome: 'success', requestId: request.id });
      const issued = deliver(reply, realm, await upgraded(auth), deliveryOf(auth), clock.now());
      return {
        ...issued,
        passkey: { id: p.credential_id, name: p.name, device_type: p.device_type, backed_up: p.backed_up, created_at: p.created_at, last_used_at: p.last_used_at },
      };
    },
  });

  r.delete(`${prefix}/passkeys/:id`, {
    schema: { tags, summary: 'Remove a passkey (needs a recent step-up)', params: credentialParam, response: { 204: z.null(), ...authErrors } },
    handler: async (request, reply) => {
      const { account } = await recent(request);
      await passkeys.remove(account.id, request.params.id);
      if (!(await accounts.hasSecondFactor(account.id))) await recovery.remove(account.id);
      await authn(AUTHN_EVENTS.mfaDisabled, { account, outcome: 'success', requestId: request.id });
      return reply.code(204).send(null);
    },
  });

  r.post(`${prefix}/passkeys/authentication/options`, {
    schema: {
      tags,
      summary: 'WebAuthn options to answer with a passkey: passwordless sign-in, second factor (with the MFA ticket) or step-up (with the session)',
      body: z.object({ use: z.enum(['signin', 'mfa', 'step-up']), mfa_ticket: z.string().max(100).optional() }).strict(),
      response: { 200: z.record(z.string(), z.unknown()), ...authErrors },
    },
    handler: async (request) => {
      const { use } = request.body;
      if (use === 'signin') return { ...(await passkeys.authenticationOptions()) };
      if (use === 'step-up') return { ...(await passkeys.authenticationOptions({ accountId: requireSession(request).session.accountId })) };
      const ticket = request.body.mfa_ticket ?? readCookie(request, MFA_COOKIE[realm]);
      const pending = ticket === undefined ? undefined : await identity.tickets.peek(realm, ticket);
      if (pending === undefined) fail(SessionErrors.IDENTITY_MFA_TICKET_INVALID, 'sign in again');
      return { ...(await passkeys.authenticationOptions({ accountId: pending.accountId })) };
    },
  });

  r.post(`${prefix}/passkeys/signin`, {
    schema: {
      tags,
      summary: 'Sign in with a passkey alone (user verification required)',
      body: z.object({ response: z.unknown(), session_delivery: delivery }).strict(),
      response: { 200: sessionIssued, ...authErrors },
    },
    handler: async (request, reply) => {
      const outcome = await signIn.withPasskey({ realm, response: request.body.response, ip: request.ip, device: device(request), requestId: request.id });
      if (request.authSession !== null) await sessions.revoke(request.authSession.session.accountId, request.authSession.session.id, 'replaced');
      return deliver(reply, realm, outcome, request.body.session_delivery, clock.now());
    },
  });
}
