import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { actorOf } from '../../http/auth.ts';
import { fail } from '../../kernel/errors.ts';
import type { Directory } from '../staff/directory.ts';
import { RightsErrors } from './errors.ts';
import { rightsCaller } from './routes.ts';
import type { ShopErasures } from './shop-erasure.ts';
import type { ShopifyWebhooks } from './shopify.ts';

/**
 * Shopify's compliance webhooks (shopify.ts), in a scope of their own whose only body parser keeps
 * the raw bytes: the signature is over exactly what Shopify sent, so the JSON is read only after it
 * verifies. And, in the API scope, the shop erasures they record, approved by two staff members.
 */
const errorBody = z.object({ error: z.object({ code: z.string(), message: z.string(), request_id: z.string() }).loose() });
const header = (description: string) => z.string().max(256).optional().meta({ description });

export function registerShopifyWebhookRoute(app: FastifyInstance, deps: { webhooks: ShopifyWebhooks }): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'buffer' }, (_request, body, done) => done(null, body));
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.post('/v1/integrations/shopify/webhooks', {
    schema: {
      tags: ['rights'],
      summary: 'Shopify compliance webhooks (customers/data_request, customers/redact, shop/redact)',
      description:
        'Verified by `X-Shopify-Hmac-Sha256` (base64 HMAC-SHA256 of the raw body under `CUSTOS_SHOPIFY_WEBHOOK_SECRET`; `401` otherwise) and `X-Shopify-Shop-Domain` (against `CUSTOS_SHOPIFY_SHOP_DOMAIN` when set); handled once per `X-Shopify-Webhook-Id`. A data request becomes an access request in the staff queue, a redact an erasure, a shop redact a shop erasure awaiting two approvers; a customer Custos does not hold answers `200` with `no_data_held`.',
      headers: z.object({
        'x-shopify-hmac-sha256': header('Base64 HMAC-SHA256 of the raw body under the app secret.'),
        'x-shopify-topic': header('customers/data_request, customers/redact or shop/redact.'),
        'x-shopify-shop-domain': header('The shop, such as acme.myshopify.com.'),
        'x-shopify-webhook-id': header('The delivery id: a redelivery with the same id changes nothing.'),
      }),
      response: {
        200: z.object({ outcome: z.enum(['request_filed', 'no_data_held', 'shop_erasure_recorded', 'duplicate']), request_id: z.string().nullable() }),
        400: errorBody,
        401: errorBody,
        403: errorBody,
        503: errorBody,
      },
    },
    handler: async (request) => {
      const h = request.headers;
      const one = (v: string | string[] | undefined) => (Array.isArray(v) ? undefined : v);
      const body = Buffer.isBuffer(request.body) ? request.body : Buffer.alloc(0);
      return deps.webhooks.receive(
        { hmac: one(h['x-shopify-hmac-sha256']), topic: one(h['x-shopify-topic']), shopDomain: one(h['x-shopify-shop-domain']), webhookId: one(h['x-shopify-webhook-id']) },
        body,
        request.id,
      );
    },
  });
}

const shopErasure = z
  .object({
    id: z.string(),
    shop_domain: z.string(),
    webhook_id: z.string(),
    received_at: z.string(),
    state: z.enum(['pending', 'approved', 'confirmed', 'completed']),
    approved_by: z.string().nullable(),
    approved_at: z.string().nullable(),
    confirmed_by: z.string().nullable(),
    confirmed_at: z.string().nullable(),
    completed_at: z.string().nullable(),
    customers_erased: z.number().int(),
  })
  .meta({ id: 'ShopErasure' });
const errors = { 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody, 409: errorBody };
const idParam = z.object({ id: z.string().regex(/^she_[0-9A-HJKMNP-TV-Z]{26}$/, 'must be a she_ id') });

export function registerShopErasureRoutes(app: FastifyInstance, deps: { shopErasures: ShopErasures; webhooks: ShopifyWebhooks; directory: Pick<Directory, 'authorizeMember'> }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const tags = ['rights'];
  r.get('/v1/rights/shop-erasures', {
    schema: { tags, summary: 'Shop erasures recorded from Shopify shop/redact webhooks', response: { 200: z.object({ data: z.array(shopErasure) }), ...errors } },
    handler: async (request) => {
      await rightsCaller(request, deps.directory);
      return { data: (await deps.shopErasures.list()) as z.infer<typeof shopErasure>[] };
    },
  });
  r.post('/v1/rights/shop-erasures/:id/approve', {
    schema: {
      tags,
      summary: 'Approve a shop erasure; a second staff member confirms it, which starts it',
      description: 'Staff holding `rights.manage` only, never an API key. The first call approves; the confirmation must come from another member (`409 RIGHTS_SHOP_ERASURE_SECOND_APPROVER`). Confirmed, every customer is erased (legal holds apply), in the background.',
      params: idParam,
      response: { 200: shopErasure, ...errors },
    },
    handler: async (request) => {
      const caller = await rightsCaller(request, deps.directory);
      if (!caller.staff) fail(RightsErrors.RIGHTS_SHOP_ERASURE_STAFF_ONLY, 'a shop erasure is approved by staff, never by an API key');
      return (await deps.shopErasures.approve(actorOf(request).ref, request.params.id, request.id)) as z.infer<typeof shopErasure>;
    },
  });
  r.post('/v1/rights/shop-erasures/:id/run', {
    schema: { tags, summary: 'Resume a confirmed shop erasure (it continues with the customers still there)', params: idParam, response: { 200: shopErasure, ...errors } },
    handler: async (request) => {
      await rightsCaller(request, deps.directory);
      return (await deps.shopErasures.run(request.params.id, request.id)) as z.infer<typeof shopErasure>;
    },
  });
  r.get('/v1/rights/shopify-webhooks', {
    schema: {
      tags,
      summary: 'Shopify compliance webhooks received, newest first, with what each did (no_data_held: Custos held nothing about that customer)',
      response: { 200: z.object({ data: z.array(z.object({ webhook_id: z.string(), topic: z.string(), shop_domain: z.string(), received_at: z.string(), outcome: z.string(), request_id: z.string().nullable() })) }), ...errors },
    },
    handler: async (request) => {
      await rightsCaller(request, deps.directory);
      return { data: await deps.webhooks.list(200) };
    },
  });
}
