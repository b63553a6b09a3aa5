import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { requireSession } from '../../../http/session.ts';
import { responseShape, type Inventory } from '../../inventory/index.ts';
import type { CallContext, VaultService } from '../../vault/service.ts';
import { linkedCustomer } from '../accounts/customer-link.ts';
import { authErrors } from './routes-schemas.ts';
import { customerActor } from '../sessions/session-guard.ts';
import type { IdentityServices } from '../sessions/session-runtime.ts';
import { provenEntrySchema, provenEntryView, treeHeadSchema } from '../../audit/routes.ts';

/**
 * A signed-in customer's own data, read through the vault like any other read — policy decision,
 * audit entry before release — as actor `customer:<id>` with purpose `account` and the session's
 * own customer as the only possible subject (GDPR Art. 15 right of access; the customer-self guard
 * refuses any other subject at the policy decision point). The session's customer is the shop's
 * record of the account's verified address (customer-link.ts); an account whose address is not
 * verified yet has none and gets 403 IDENTITY_EMAIL_UNVERIFIED.
 */
export interface MeRouteDeps {
  readonly identity: IdentityServices;
  readonly vault: VaultService;
  readonly inventory: Inventory;
  /** The download links of the customer's access and portability exports still usable (rights/export.ts). */
  readonly dataExports?: (customerId: string) => Promise<readonly { request_id: string; url: string; token: string; expires_at: string }[]>;
}

export function registerMeRoutes(app: FastifyInstance, deps: MeRouteDeps): void {
  const { identity, vault, inventory } = deps;
  const r = app.withTypeProvider<ZodTypeProvider>();
  const tags = ['me'];
  const meta = { id: z.string(), created_at: z.string(), updated_at: z.string() };
  const address = z.object({ ...meta, ...responseShape(inventory.collections.get('addresses')!) });
  const dataExport = z.object({ request_id: z.string(), url: z.string(), token: z.string(), expires_at: z.string() });
  const customer: z.ZodType = z.object({
    ...meta,
    ...responseShape(inventory.collections.get('customers')!),
    addresses: z.array(address),
    data_exports: z.array(dataExport).optional().meta({ description: 'Download links of my data exports not used yet (each works once, until expires_at).' }),
  });
  const order: z.ZodType = z.object({ ...meta, customer_id: z.string(), ...responseShape(inventory.collections.get('orders')!) });

  async function self(request: FastifyRequest): Promise<{ ctx: CallContext; customerId: string }> {
    const auth = requireSession(request);
    const account = await identity.accounts.get(auth.session.accountId);
    const customerId = await linkedCustomer({ accounts: identity.accounts, vault }, account, request.id);
    return { ctx: { actor: customerActor(customerId), purpose: 'account', requestId: request.id }, customerId };
  }

  r.get('/v1/me', {
    schema: { tags, summary: 'My profile and addresses', response: { 200: customer, ...authErrors } },
    handler: async (request) => {
      const { ctx, customerId } = await self(request);
      const me = await vault.readCustomer(ctx, customerId);
      if (deps.dataExports === undefined) return me;
      const links = await deps.dataExports(customerId);
      return { ...me, data_exports: links.map((l) => ({ request_id: l.request_id, url: l.url, token: l.token, expires_at: l.expires_at })) };
    },
  });

  r.get('/v1/me/orders', {
    schema: {
      tags,
      summary: 'My orders, newest first',
      querystring: z.object({ limit: z.coerce.number().int().min(1).max(200).default(50), cursor: z.string().max(40).optional() }),
      response: { 200: z.object({ data: z.array(order), next_cursor: z.string().nullable() }), ...authErrors },
    },
    handler: async (request) => {
      const { ctx, customerId } = await self(request);
      return vault.listOrders(ctx, customerId, request.query);
    },
  });

  r.get('/v1/me/access-log', {
    schema: {
      tags,
      summary: 'Who touched my data, when, why and which fields (never values)',
      querystring: z.object({ limit: z.coerce.number().int().min(1).max(500).default(100), before: z.coerce.number().int().positive().optional() }),
      response: {
        200: z.object({ data: z.array(z.object(provenEntrySchema)), head: treeHeadSchema.nullable() }),
        ...authErrors,
      },
    },
    handler: async (request) => {
      const { ctx, customerId } = await self(request);
      const page = await vault.accessLog(ctx, customerId, request.query);
      return { data: page.entries.map(provenEntryView), head: page.head };
    },
  });
}
