import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { checkOrigin } from '../../../http/csrf.ts';
import { MFA_COOKIE, readCookie, requireSession, setCookie } from '../../../http/session.ts';
import type { Clock } from '../../../kernel/clock.ts';
import { fail } from '../../../kernel/errors.ts';
import { Secret } from '../../../kernel/secret.ts';
import { AUTHN_EVENTS } from '../audit-events.ts';
import type { Realm } from '../passwords/password-policy.ts';
import {
  authErrors,
  deliver,
  deliveryOf,
  delivery,
  device,
  dropCookies,
  emailField,
  passwordField,
  requireRecent,
  sessionIssued,
  sessionOut,
  sessionView,
} from './routes-schemas.ts';
import { SessionErrors } from '../sessions/session-errors.ts';
import type { IdentityServices } from '../sessions/session-runtime.ts';
import type { PrimaryProof, SecondFactorProof } from '../sessions/session-signin.ts';

/**
 * Sign-in, second factor, step-up, sign-out, the device list and password change, for one realm
 * under `prefix` (/v1/auth for customers, /v1/staff/auth for staff). Every answer that starts or
 * upgrades a session carries a NEW token (ASVS 7.2.4); every one of these events is audited.
 */
export interface AuthRouteDeps {
  readonly identity: IdentityServices;
  readonly clock: Clock;
  readonly publicOrigin: string | undefined;
}

const idParam = z.object({ id: z.string().regex(/^ses_[0-9A-HJKMNP-TV-Z]{26}$/, 'must be a ses_ id') });
const mfaRequired = z.object({
  mfa_required: z.literal(true),
  mfa_ticket: z.string(),
  expires_at: z.string(),
  methods: z.array(z.enum(['totp', 'recovery_code', 'passkey'])),
});
const secondFactorBody = z
  .object({
    mfa_ticket: z.string().max(100).optional(),
    code: z.string().max(32).optional(),
    recovery_code: z.string().max(64).optional(),
    passkey: z.unknown().optional(),
    session_delivery: delivery,
  })
  .strict();

function secondFactorProof(body: z.infer<typeof secondFactorBody>): SecondFactorProof {
  const given = [body.code, body.recovery_code, body.passkey].filter((v) => v !== undefined).length;
  if (given !== 1) fail(SessionErrors.IDENTITY_MFA_METHOD_INVALID, 'send exactly one of code, recovery_code or passkey');
  if (body.code !== undefined) return { kind: 'totp', code: new Secret(body.code) };
  if (body.recovery_code !== undefined) return { kind: 'recovery_code', code: new Secret(body.recovery_code) };
  return { kind: 'passkey', response: body.passkey };
}

export function registerAuthRoutes(app: FastifyInstance, deps: AuthRouteDeps, realm: Realm, prefix: string): void {
  const { identity, clock } = deps;
  const { sessions, signIn, authn, accounts } = identity;
  const r = app.withTypeProvider<ZodTypeProvider>();
  const tags = [realm === 'staff' ? 'staff auth' : 'auth'];
  const attempt = (request: { ip: string; id: string }, dev: string) => ({ ip: request.ip, device: dev, requestId: request.id });

  r.post(`${prefix}/signin`, {
    schema: {
      tags,
      summary: 'Sign in with email and password',
      description: 'Unknown email and wrong password answer alike. With a second factor on, answers `mfa_required` and a ticket for …/signin/mfa.',
      body: z.object({ email: emailField, password: passwordField, session_delivery: delivery }).strict(),
      response: { 200: z.union([sessionIssued, mfaRequired]), ...authErrors },
    },
    handler: async (request, reply) => {
      const { email, password, session_delivery } = request.body;
      // A client that hangs up while its sign-in waits in line costs no password check.
      const gone = new AbortController();
      reply.raw.once('close', () => {
        if (!reply.raw.writableFinished) gone.abort();
      });
      const outcome = await signIn.withPassword({ realm, email, password: new Secret(password), signal: gone.signal, ...attempt(request, device(request)) });
      // The session presented before sign-in (if any) is never kept: sign-in replaces it (fixation).
      if (request.authSession !== null) await sessions.revoke(request.authSession.session.accountId, request.authSession.session.id, 'replaced');
      if (outcome.kind === 'mfa') {
        if (session_delivery === 'cookie')
          setCookie(reply, realm, MFA_COOKIE[realm], outcome.ticket.reveal(), (Date.parse(outcome.expiresAt) - clock.now().getTime()) / 1000);
        return { mfa_required: true as const, mfa_ticket: outcome.ticket.reveal(), expires_at: outcome.expiresAt, methods: [...outcome.methods] };
      }
      return deliver(reply, realm, outcome, session_delivery, clock.now());
    },
  });

  r.post(`${prefix}/signin/mfa`, {
    schema: {
      tags,
      summary: 'Complete a sign-in with an authenticator code, a recovery code or a passkey',
      body: secondFactorBody,
      response: { 200: sessionIssued, ...authErrors },
    },
    handler: async (request, reply) => {
      const body = request.body;
      const fromCookie = body.mfa_ticket === undefined;
      const ticket = body.mfa_ticket ?? readCookie(request, MFA_COOKIE[realm]);
      if (ticket === undefined) fail(SessionErrors.IDENTITY_MFA_TICKET_INVALID, 'sign in again');
      // A ticket carried by a cookie is ambient authority like a session: prove the origin.
      if (fromCookie) checkOrigin(request, { publicOrigin: deps.publicOrigin, requireEvidence: true });
      const proof = secondFactorProof(body);
      const outcome = await signIn.secondFactor({ realm, ticket, proof, ...attempt(request, device(request)) });
      if (request.authSession !== null) await sessions.revoke(request.authSession.session.accountId, request.authSession.session.id, 'replaced');
      dropCookies(reply, realm);
      return deliver(reply, realm, outcome, body.session_delivery, clock.now());
    },
  });

  r.post(`${prefix}/step-up`, {
    schema: {
      tags,
      summary: 'Confirm the password (or a passkey) before a sensitive change; rotates the session token',
      body: z.object({ password: passwordField.optional(), passkey: z.unknown().optional() }).strict(),
      response: { 200: sessionIssued, ...authErrors },
    },
    handler: async (request, reply) => {
      const auth = requireSession(request);
      const { password, passkey } = request.body;
      if ((password === undefined) === (passkey === undefined)) fail(SessionErrors.IDENTITY_MFA_METHOD_INVALID, 'send exactly one of password or passkey');
      const proof: PrimaryProof = password !== undefined ? { kind: 'password', password: new Secret(password) } : { kind: 'passkey', response: passkey };
      const rotated = await signIn.stepUp({ session: auth.session, proof, ...attempt(request, auth.session.device) });
      return deliver(reply, realm, rotated, deliveryOf(auth), clock.now());
    },
  });

  r.post(`${prefix}/signout`, {
    schema: { tags, summary: 'Sign out this session', response: { 204: z.null(), ...authErrors } },
    handler: async (request, reply) => {
      const auth = request.authSession;
      if (auth !== null) {
        await sessions.revoke(auth.session.accountId, auth.session.id, 'signout');
        await authn(AUTHN_EVENTS.sessionRevoked, { account: await accounts.get(auth.session.accountId), outcome: 'success', requestId: request.id });
      }
      dropCookies(reply, realm);
      return reply.code(204).send(null);
    },
  });

  r.get(`${prefix}/session`, {
    schema: {
      tags,
      summary: 'The current session and the state of its account',
      response: {
        200: z.object({
          session: sessionOut,
          account: z.object({
            id: z.string(),
            realm: z.enum(['customer', 'staff']),
            email_verified: z.boolean(),
            has_password: z.boolean(),
            second_factors: z.array(z.enum(['totp', 'recovery_code', 'passkey'])),
          }),
          reauthenticated_recently: z.boolean(),
        }),
        ...authErrors,
      },
    },
    handler: async (request) => {
      const auth = requireSession(request);
      const account = await accounts.get(auth.session.accountId);
      return {
        session: sessionView(auth.session),
        account: {
          id: account.id,
          realm: account.realm,
          email_verified: account.email_verified_at !== null,
          has_password: account.has_password,
          second_factors: await signIn.methods(account.id),
        },
        reauthenticated_recently: sessions.isRecent(auth.session),
      };
    },
  });

  r.get(`${prefix}/sessions`, {
    schema: {
      tags,
      summary: 'Every live session (device) of this account',
      response: { 200: z.object({ data: z.array(sessionOut.extend({ current: z.boolean() })) }), ...authErrors },
    },
    handler: async (request) => {
      const auth = requireSession(request);
      const list = await sessions.list(auth.session.accountId);
      return { data: list.map((s) => ({ ...sessionView(s), current: s.id === auth.session.id })) };
    },
  });

  r.delete(`${prefix}/sessions/:id`, {
    schema: { tags, summary: 'Sign out one device', params: idParam, response: { 204: z.null(), ...authErrors } },
    handler: async (request, reply) => {
      const auth = requireSession(request);
      const revoked = await sessions.revoke(auth.session.accountId, request.params.id, 'user');
      if (!revoked) fail(SessionErrors.IDENTITY_SESSION_NOT_FOUND, 'this account has no active session with that id');
      await authn(AUTHN_EVENTS.sessionRevoked, { account: await accounts.get(auth.session.accountId), outcome: 'success', requestId: request.id });
      if (request.params.id === auth.session.id) dropCookies(reply, realm);
      return reply.code(204).send(null);
    },
  });

  r.post(`${prefix}/password`, {
    schema: {
      tags,
      summary: 'Change the password (needs a recent step-up); signs out every session and starts a new one here',
      // `password`, like the reset confirmation, sign-up and the invitation: every route that sets a password names it so.
      body: z.object({ password: passwordField }).strict(),
      response: { 200: sessionIssued, ...authErrors },
    },
    handler: async (request, reply) => {
      const auth = requireSession(request);
      requireRecent(sessions, auth);
      const account = await accounts.get(auth.session.accountId);
      try {
        await identity.gate.run(() => accounts.setPassword(account.id, new Secret(request.body.password)));
      } catch (error) {
        await authn(AUTHN_EVENTS.passwordChangeFail, { account, outcome: 'failure', requestId: request.id });
        throw error;
      }
      await sessions.revokeAll(account.id, 'password_change');
      await identity.tokens.revokeAll(account.id, 'reset_password');
      await authn(AUTHN_EVENTS.passwordChange, { account, outcome: 'success', requestId: request.id });
      identity.mail.post('password_changed', identity.messages.passwordChanged(account.email, realm));
      const fresh = await sessions.create({
        accountId: account.id,
        realm,
        device: auth.session.device,
        mfaVerified: auth.session.mfaVerifiedAt !== null,
      });
      return deliver(reply, realm, fresh, deliveryOf(auth), clock.now());
    },
  });
}
