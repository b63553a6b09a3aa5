import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { requireSession } from '../../../http/session.ts';
import { AppError, fail } from '../../../kernel/errors.ts';
import { Secret } from '../../../kernel/secret.ts';
import type { VaultService } from '../../vault/service.ts';
import type { AccountInfo } from '../accounts/account-service.ts';
import { AUTHN_EVENTS } from '../audit-events.ts';
import { normaliseEmail } from '../accounts/email.ts';
import { IdentityErrors } from '../errors.ts';
import type { Realm } from '../passwords/password-policy.ts';
import { linkedCustomer } from '../accounts/customer-link.ts';
import { registerClaimRoute } from './routes-claim.ts';
import { refusePassword, spendingLink } from './routes-links.ts';
import { authErrors, emailField, passwordField } from './routes-schemas.ts';
import type { IdentityServices } from '../sessions/session-runtime.ts';

/**
 * Sign-up, email verification, claiming a stored customer's account, and password reset. None of
 * them tells whether an address has an account (ASVS 6.3.8): sign-up and reset answer 202 with the
 * same body either way, the password policy is checked before the address is even looked up,
 * sign-up hashes the password once on every path, and every mail leaves after the answer. Reset
 * keeps working while the account is locked, clears the lockout, and signs out every session
 * (ASVS 7.4.3).
 *
 * Sign-up creates no vault record: the account links to the shop's customer of that email (or a
 * new one) when the address is verified (customer-link.ts). A sign-up of an address whose account
 * is still unverified replaces that pending sign-up — its password, second factors, sessions and
 * verification links — so an address signed up by someone who cannot read its mail blocks nobody,
 * and that earlier link can no longer verify anything. A verified address is never changed by a
 * sign-up: its owner is mailed instead.
 */
export interface AccountRouteDeps {
  readonly identity: IdentityServices;
  readonly vault: Pick<VaultService, 'create' | 'customerIdByEmail'>;
}

const accepted = z.object({ status: z.literal('accepted') });

type SignUp = { kind: 'created'; account: AccountInfo } | { kind: 'replaced'; account: AccountInfo } | { kind: 'exists' };

export function registerAccountRoutes(app: FastifyInstance, deps: AccountRouteDeps, realm: Realm, prefix: string): void {
  const { identity } = deps;
  const { accounts, passwords, tokens, sessions, mail, messages, authn } = identity;
  const r = app.withTypeProvider<ZodTypeProvider>();
  const tags = [realm === 'staff' ? 'staff auth' : 'auth'];

  const sendVerification = (account: AccountInfo) =>
    mail.later('verification', async () => {
      if (!(await identity.mailBudget('verification', account.id))) return;
      const issued = await tokens.issue(account.id, 'verify_email');
      await mail.send(messages.verification(account.email, issued.token));
    });

  if (realm === 'customer') {
    r.post(`${prefix}/signup`, {
      schema: {
        tags,
        summary: 'Create a customer account; answers alike whether or not the address already has one',
        body: z.object({ email: emailField, password: passwordField }).strict(),
        response: { 202: accepted, ...authErrors },
      },
      handler: async (request, reply) => {
        const email = normaliseEmail(request.body.email);
        if (email === undefined) fail(IdentityErrors.IDENTITY_EMAIL_INVALID, 'email is not a well-formed address');
        const password = new Secret(request.body.password);
        const ctx = { realm: 'customer' as const, secondFactor: false, email };
        // Every path below hashes the password once, under the same policy and argon2id cost.
        const outcome = await identity.gate.run(async (): Promise<SignUp> => {
          const verdict = await passwords.evaluate(password, ctx);
          if (verdict.refusal !== undefined) refusePassword(verdict.refusal);
          const known = await accounts.findByEmail('customer', email);
          if (known === undefined) {
            try {
              return { kind: 'created', account: (await accounts.create({ realm: 'customer', email, password })).account };
            } catch (error) {
              // Two sign-ups of one address at once: the loser is told like any known address.
              if (error instanceof AppError && error.code === IdentityErrors.IDENTITY_EMAIL_TAKEN.code) return { kind: 'exists' };
              throw error;
            }
          }
          if (known.email_verified_at === null && (await accounts.replacePending(known.id, password))) return { kind: 'replaced', account: known };
          if (known.email_verified_at !== null) await passwords.hashNew(password, ctx);
          return { kind: 'exists' };
        });
        if (outcome.kind === 'exists') {
          mail.later('signup_exists', async () => {
            const known = await accounts.findByEmail('customer', email);
            if (known !== undefined && (await identity.mailBudget('signup_exists', known.id))) await mail.send(messages.accountExists(known.email, 'customer'));
          });
          return reply.code(202).send({ status: 'accepted' as const });
        }
        const { account } = outcome;
        if (outcome.kind === 'replaced') {
          // The earlier sign-up's sessions and links end here.
          await sessions.revokeAll(account.id, 'signup_replaced');
          const revoked = await tokens.revokeAll(account.id);
          if (revoked > 0) await authn(AUTHN_EVENTS.tokenRevoked, { account, outcome: 'success', requestId: request.id });
          await authn(AUTHN_EVENTS.userUpdated, { account, outcome: 'success', requestId: request.id });
        } else await authn(AUTHN_EVENTS.userCreated, { account, outcome: 'success', requestId: request.id });
        sendVerification(account);
        return reply.code(202).send({ status: 'accepted' as const });
      },
    });

    r.post(`${prefix}/verify-email`, {
      schema: {
        tags,
        summary: "Confirm the email address with the token from the mail; links the account to the shop's customer of that address",
        body: z.object({ token: z.string().max(200) }).strict(),
        response: { 200: z.object({ status: z.literal('verified') }), ...authErrors },
      },
      handler: async (request) => {
        const { accountId } = await spendingLink(authn, request.id, () => tokens.consume('verify_email', new Secret(request.body.token)));
        if ((await accounts.get(accountId)).email_verified_at === null) await accounts.markEmailVerified(accountId);
        await linkedCustomer({ accounts, vault: deps.vault }, await accounts.get(accountId), request.id);
        await authn(AUTHN_EVENTS.userUpdated, { account: await accounts.get(accountId), outcome: 'success', requestId: request.id });
        return { status: 'verified' as const };
      },
    });

    r.post(`${prefix}/verify-email/resend`, {
      schema: { tags, summary: 'Mail a new verification link to the signed-in account', response: { 202: accepted, ...authErrors } },
      handler: async (request, reply) => {
        const account = await accounts.get(requireSession(request).session.accountId);
        if (account.email_verified_at === null) sendVerification(account);
        return reply.code(202).send({ status: 'accepted' as const });
      },
    });

    registerClaimRoute(app, deps, prefix);
  }

  r.post(`${prefix}/password-reset`, {
    schema: {
      tags,
      summary: 'Mail a password reset link; answers alike whether or not the address has an account',
      body: z.object({ email: emailField }).strict(),
      response: { 202: accepted, ...authErrors },
    },
    handler: async (request, reply) => {
      const email = request.body.email;
      if (normaliseEmail(email) === undefined) fail(IdentityErrors.IDENTITY_EMAIL_INVALID, 'email is not a well-formed address');
      // Everything after this line happens after the answer: its cost cannot tell anything.
      mail.later('reset', async () => {
        const account = await accounts.findByEmail(realm, email);
        if (account === undefined || !(await identity.mailBudget('reset', account.id))) return;
        const issued = await tokens.issue(account.id, 'reset_password');
        if (issued.revoked > 0) await authn(AUTHN_EVENTS.tokenRevoked, { account, outcome: 'success', requestId: request.id });
        await authn(AUTHN_EVENTS.tokenCreated, { account, outcome: 'success', requestId: request.id });
        await mail.send(messages.reset(account.email, issued.token, realm));
      });
      return reply.code(202).send({ status: 'accepted' as const });
    },
  });

  r.post(`${prefix}/password-reset/confirm`, {
    schema: {
      tags,
      summary: 'Set a new password with the token from the reset mail; signs out every session',
      body: z.object({ token: z.string().max(200), password: passwordField }).strict(),
      response: { 200: z.object({ status: z.literal('password_changed') }), ...authErrors },
    },
    handler: async (request) => {
      const password = new Secret(request.body.password);
      const token = new Secret(request.body.token);
      const failed = async (error: unknown, otherwise?: AccountInfo) => {
        if (error instanceof AppError && error.code === IdentityErrors.IDENTITY_TOKEN_REUSED.code)
          await authn(AUTHN_EVENTS.tokenReuse, { account: undefined, outcome: 'failure', requestId: request.id });
        else if (otherwise !== undefined) await authn(AUTHN_EVENTS.passwordChangeFail, { account: otherwise, outcome: 'failure', requestId: request.id });
      };
      let accountId: string;
      try {
        ({ accountId } = await tokens.peek('reset_password', token));
      } catch (error) {
        await failed(error);
        throw error;
      }
      const account = await accounts.get(accountId);
      if (account.realm !== realm) fail(IdentityErrors.IDENTITY_TOKEN_INVALID, 'the link is not valid');
      // The link is spent only once the password passed every rule of this account, and atomically:
      // of two confirmations with one link, one spends it and the other stores nothing.
      try {
        await identity.gate.run(() => accounts.setPassword(account.id, password, async () => void (await tokens.consume('reset_password', token))));
      } catch (error) {
        await failed(error, account);
        throw error;
      }
      if (account.email_verified_at === null) await accounts.markEmailVerified(account.id);
      await sessions.revokeAll(account.id, 'password_reset');
      await tokens.revokeAll(account.id, 'reset_password');
      await identity.lockout.clear(accounts.lockoutKey(realm, account.email));
      await authn(AUTHN_EVENTS.passwordChange, { account, outcome: 'success', requestId: request.id });
      mail.later('password_changed', async () => mail.send(messages.passwordChanged(account.email, realm)));
      return { status: 'password_changed' as const };
    },
  });
}
