import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { actorOf } from '../../../http/auth.ts';
import { idempotencyKeyHeader } from '../../../http/idempotency.ts';
import { AppError, fail } from '../../../kernel/errors.ts';
import { Secret } from '../../../kernel/secret.ts';
import type { AuditLog } from '../../audit/service.ts';
import { PolicyErrors } from '../../policy/errors.ts';
import type { VaultService } from '../../vault/service.ts';
import type { AccountInfo } from '../accounts/account-service.ts';
import { CLAIM_TTL_MS } from '../accounts/claim-service.ts';
import { normaliseEmail } from '../accounts/email.ts';
import { AUTHN_EVENTS } from '../audit-events.ts';
import { IdentityErrors } from '../errors.ts';
import { claimMail } from '../mail/mail-messages.ts';
import type { IdentityServices } from '../sessions/session-runtime.ts';
import { refusePassword, spendingLink } from './routes-links.ts';
import { authErrors, errorBody, passwordField } from './routes-schemas.ts';

/**
 * A shop invites a customer it stored to claim their account, and the customer does.
 *
 * `POST /v1/customers/{id}/invitation` (API key or staff session, through purpose `account`): reads
 * the customer's email — a read of `email` alone, audited — and mails a single-use link to
 * `/account/claim#token=…`, valid for 72 hours; a new invitation supersedes older unused links. The
 * invitation is audited in the customer's access log (`identity.authn_token_created`), and so is a
 * caller refused for lacking `account`. At most 5 invitation mails per customer an hour. It honours
 * `Idempotency-Key`: a retry with the same key answers the first answer again and mails nothing.
 *
 * `POST /v1/auth/claim` `{ token, password }`: the link proves the mailbox, so the address counts
 * as verified. The password must pass the whole policy before the link is spent. The account of
 * that address is created, or — when one exists — given the new password like a reset (every
 * session signed out, older links revoked; an unverified one also loses the factors its sign-up
 * enrolled), and linked to the invited customer. It does not sign in: the person signs in next,
 * through the one sign-in path with its throttling and second factors. The link fails when the
 * customer no longer holds the address it was mailed to.
 */
export interface ClaimRouteDeps {
  readonly identity: IdentityServices;
  readonly vault: Pick<VaultService, 'customerIdByEmail' | 'customerEmail'>;
  readonly audit: Pick<AuditLog, 'append'>;
}

const customerId = z.object({ id: z.string().regex(/^cus_[0-9A-HJKMNP-TV-Z]{26}$/, 'must be a cus_ id') });

export function registerInvitationRoute(app: FastifyInstance, deps: ClaimRouteDeps): void {
  const { identity, vault, audit } = deps;
  app.withTypeProvider<ZodTypeProvider>().post('/v1/customers/:id/invitation', {
    config: { idempotent: true },
    schema: {
      tags: ['customers'],
      summary: 'Invite a stored customer to claim their account: mails a single-use link valid for 72 hours (purpose account)',
      security: [{ apiKey: [] }],
      params: customerId,
      headers: z.object(idempotencyKeyHeader),
      response: {
        202: z.object({ status: z.literal('accepted'), expires_at: z.string() }),
        400: errorBody,
        401: errorBody,
        403: errorBody,
        404: errorBody,
        409: errorBody,
        422: errorBody,
        429: errorBody,
      },
    },
    handler: async (request, reply) => {
      const actor = actorOf(request);
      const id = request.params.id;
      const entry = { actor: actor.ref, subjectId: id, collection: 'customers', recordId: id, fields: [], purpose: 'account', requestId: request.id };
      let stored: string | undefined;
      try {
        stored = await vault.customerEmail({ actor, purpose: 'account', requestId: request.id }, id);
      } catch (error) {
        if (error instanceof AppError && error.code === PolicyErrors.POLICY_PURPOSE_NOT_ALLOWED.code)
          await audit.append({ ...entry, action: `identity.${AUTHN_EVENTS.tokenCreated}`, outcome: 'denied' });
        throw error;
      }
      const email = stored === undefined ? undefined : normaliseEmail(stored);
      if (email === undefined) fail(IdentityErrors.IDENTITY_INVITATION_NO_EMAIL, 'the customer has no email address to send the invitation to');
      if (!(await identity.mailBudget('claim', id))) fail(IdentityErrors.IDENTITY_THROTTLED, 'too many invitations for this customer; try again later', { retry_after_seconds: 3600 });
      const issued = await identity.claims.issue({ customerId: id, email, createdBy: actor.ref });
      if (issued.superseded > 0) await audit.append({ ...entry, action: `identity.${AUTHN_EVENTS.tokenRevoked}`, outcome: 'success' });
      await audit.append({ ...entry, action: `identity.${AUTHN_EVENTS.tokenCreated}`, outcome: 'success' });
      const link = `${identity.links.publicUrl}/account/claim#token=${issued.token.reveal()}`;
      identity.mail.post('claim', claimMail({ to: email, shopName: identity.shopName, link, validForMs: CLAIM_TTL_MS }));
      return reply.code(202).send({ status: 'accepted' as const, expires_at: issued.expires_at });
    },
  });
}

export function registerClaimRoute(app: FastifyInstance, deps: { identity: IdentityServices; vault: Pick<VaultService, 'customerIdByEmail'> }, prefix: string): void {
  const { identity, vault } = deps;
  const { accounts, passwords, claims, sessions, tokens, authn, mail, messages } = identity;
  app.withTypeProvider<ZodTypeProvider>().post(`${prefix}/claim`, {
    schema: {
      tags: ['auth'],
      summary: "Claim the account a shop invited you to: sets the password, confirms the address, links the shop's customer record; does not sign in",
      body: z.object({ token: z.string().max(200), password: passwordField }).strict(),
      response: { 200: z.object({ status: z.literal('claimed') }), ...authErrors },
    },
    handler: async (request) => {
      const password = new Secret(request.body.password);
      const claim = await spendingLink(authn, request.id, () => claims.check(new Secret(request.body.token)));
      if ((await vault.customerIdByEmail(claim.email)) !== claim.customerId) fail(IdentityErrors.IDENTITY_TOKEN_INVALID, 'the link is no longer valid');
      const { account, existed } = await identity.gate.run(async (): Promise<{ account: AccountInfo; existed: boolean }> => {
        const known = await accounts.findByEmail('customer', claim.email);
        if (known !== undefined && known.customer_id !== null && known.customer_id !== claim.customerId)
          fail(IdentityErrors.IDENTITY_CLAIM_CONFLICT, 'the account of this address is linked to another customer record');
        const secondFactor = known !== undefined && known.email_verified_at !== null && (await accounts.hasSecondFactor(known.id));
        const verdict = await passwords.evaluate(password, { realm: 'customer', secondFactor, email: claim.email });
        if (verdict.refusal !== undefined) refusePassword(verdict.refusal);
        await spendingLink(authn, request.id, () => claims.spend(claim));
        if (known === undefined) {
          const created = await accounts.create({ realm: 'customer', email: claim.email, password, customerId: claim.customerId });
          await accounts.markEmailVerified(created.account.id);
          return { account: await accounts.get(created.account.id), existed: false };
        }
        const replaced = known.email_verified_at === null && (await accounts.replacePending(known.id, password));
        if (!replaced) await accounts.setPassword(known.id, password);
        if (known.email_verified_at === null) await accounts.markEmailVerified(known.id);
        await accounts.linkCustomer(known.id, claim.customerId);
        return { account: await accounts.get(known.id), existed: true };
      });
      if (existed) {
        await sessions.revokeAll(account.id, 'account_claimed');
        await tokens.revokeAll(account.id);
        await identity.lockout.clear(accounts.lockoutKey('customer', account.email));
        await authn(AUTHN_EVENTS.passwordChange, { account, outcome: 'success', requestId: request.id });
        mail.post('password_changed', messages.passwordChanged(account.email, 'customer'));
      } else await authn(AUTHN_EVENTS.userCreated, { account, outcome: 'success', requestId: request.id });
      await authn(AUTHN_EVENTS.userUpdated, { account, outcome: 'success', requestId: request.id });
      return { status: 'claimed' as const };
    },
  });
}
