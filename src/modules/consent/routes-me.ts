import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { requireSession } from '../../http/session.ts';
import { linkedCustomer } from '../identity/accounts/customer-link.ts';
import { customerActor } from '../identity/sessions/session-guard.ts';
import type { IdentityServices } from '../identity/sessions/session-runtime.ts';
import type { VaultService } from '../vault/service.ts';
import { asInput, errorBody, objectionBody, consentBody, consentRecorded, consentState, CUSTOMER_SOURCES } from './routes.ts';
import type { CallerContext, ConsentService } from './service.ts';

/**
 * The customer's own consents (GDPR Art. 7(3): withdrawing is one call, like granting), as actor
 * `customer:<id>` through the same ledger, policy check and audit as the shop's calls.
 */
export function registerConsentMeRoutes(app: FastifyInstance, deps: { consent: ConsentService; identity: IdentityServices; vault: VaultService }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const tags = ['me'];
  const errors = { 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody };

  async function self(request: FastifyRequest): Promise<{ ctx: CallerContext; customerId: string }> {
    const auth = requireSession(request);
    const account = await deps.identity.accounts.get(auth.session.accountId);
    const customerId = await linkedCustomer({ accounts: deps.identity.accounts, vault: deps.vault }, account, request.id);
    return { ctx: { actor: customerActor(customerId), requestId: request.id }, customerId };
  }

  r.get('/v1/me/consents', {
    schema: { tags, summary: 'My consents: state per purpose (and which need confirming), history, GPC', response: { 200: consentState, ...errors } },
    handler: async (request) => {
      const { ctx, customerId } = await self(request);
      return deps.consent.state(ctx, customerId);
    },
  });

  r.post('/v1/me/objections', {
    schema: { tags, summary: 'Object to a purpose based on legitimate interests (GDPR Art. 21)', body: objectionBody, response: { 201: consentRecorded, ...errors } },
    handler: async (request, reply) => {
      const { ctx, customerId } = await self(request);
      return reply.code(201).send(await deps.consent.object(ctx, customerId, request.body.purpose, 'web_form'));
    },
  });

  r.post('/v1/me/consents', {
    schema: { tags, summary: 'Grant or withdraw my consent to a purpose', body: consentBody, response: { 201: consentRecorded, ...errors } },
    handler: async (request, reply) => {
      const { ctx, customerId } = await self(request);
      return reply.code(201).send(await deps.consent.record(ctx, customerId, asInput(request.body), CUSTOMER_SOURCES));
    },
  });
}
