import { createHmac, timingSafeEqual } from 'node:crypto';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { Clock } from '../../kernel/clock.ts';
import { fail } from '../../kernel/errors.ts';
import type { Logger } from '../../kernel/logger.ts';
import type { Secret } from '../../kernel/secret.ts';
import type { Database } from '../../store/schema.ts';
import type { AuditLog } from '../audit/service.ts';
import type { VaultService } from '../vault/service.ts';
import type { ErasureService } from './erasure.ts';
import { RightsErrors } from './errors.ts';
import type { RightsContext, RightsService } from './service.ts';

/**
 * Shopify's mandatory compliance webhooks (shopify.dev, "Privacy law compliance"), received at
 * `POST /v1/integrations/shopify/webhooks`. Each is checked before anything is read or recorded:
 * `X-Shopify-Hmac-Sha256` must be the base64 HMAC-SHA256 of the raw body under the app secret
 * (compared in constant time; 401 otherwise), and `X-Shopify-Shop-Domain` the configured shop.
 * A webhook is handled once per `X-Shopify-Webhook-Id` (a redelivery answers 200 and changes
 * nothing). A signed webhook counts as a verified requester.
 *
 * - `customers/data_request`: an access request, left in the staff queue (`GET
 *   /v1/rights/requests`): Shopify expects the app to hand the data to the store owner, who
 *   completes it (the export's link then shows in the request).
 * - `customers/redact`: an erasure, accepted at once (nothing of the customer is released from
 *   then on) and run in the background (Shopify wants an answer within seconds; the run is
 *   resumed by the erasure sweep after a crash).
 * - A customer Custos does not hold answers 200 and leaves a "no data held" record.
 * - `shop/redact`: a shop erasure that waits for two staff members (shop-erasure.ts); it never
 *   wipes anything on its own.
 *
 * Customers are matched by the `shopify_customer_id` field the inventory declares (blind index),
 * else by email (blind index); nothing is opened to match.
 */
export const SHOPIFY_TOPICS = ['customers/data_request', 'customers/redact', 'shop/redact'] as const;
export type ShopifyTopic = (typeof SHOPIFY_TOPICS)[number];
export const SHOPIFY_ACTOR = Object.freeze({ ref: 'integration:shopify', kind: 'system' as const, purposes: Object.freeze(['rights']) });
const SHOPIFY_ID_FIELD = 'shopify_customer_id';

const id = z.union([z.number().int().nonnegative(), z.string().regex(/^\d{1,20}$/)]).transform(String);
const shopFields = { shop_id: id, shop_domain: z.string().min(1).max(255) };
const customer = z.object({ id: id.optional(), email: z.string().max(320).optional(), phone: z.string().max(64).nullable().optional() }).loose();
const PAYLOADS = {
  'customers/data_request': z.object({ ...shopFields, customer, orders_requested: z.array(id).optional(), data_request: z.object({ id }).loose().optional() }).loose(),
  'customers/redact': z.object({ ...shopFields, customer, orders_to_redact: z.array(id).optional() }).loose(),
  'shop/redact': z.object(shopFields).loose(),
} as const;

export interface WebhookHeaders {
  readonly hmac: string | undefined;
  readonly shopDomain: string | undefined;
  readonly webhookId: string | undefined;
  readonly topic: string | undefined;
}

export type WebhookOutcome = 'request_filed' | 'no_data_held' | 'shop_erasure_recorded' | 'duplicate';

export interface ShopifyWebhooks {
  receive(headers: WebhookHeaders, rawBody: Buffer, requestId: string): Promise<{ outcome: WebhookOutcome; request_id: string | null }>;
  /** Webhooks received, newest first (the "no data held" records among them). */
  list(limit: number): Promise<Database['shopify_webhooks'][]>;
}

/** Whether `given` (base64) is the HMAC-SHA256 of `body` under `secret`, compared in constant time. */
export function shopifySignatureValid(secret: string, body: Buffer, given: string | undefined): boolean {
  if (given === undefined || !/^[A-Za-z0-9+/]{43}=$/.test(given)) return false;
  const want = createHmac('sha256', secret).update(body).digest();
  return timingSafeEqual(want, Buffer.from(given, 'base64'));
}

export function createShopifyWebhooks(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditLog, 'append'>;
  secret: Secret<string> | undefined;
  shopDomain: string | undefined;
  rights: RightsService;
  erasure: Pick<ErasureService, 'accept'>;
  vault: Pick<VaultService, 'customerIdBy' | 'customerIdByEmail'>;
  shopErasures: { record(input: { shopDomain: string; webhookId: string }): Promise<string> };
  logger?: Logger;
}): ShopifyWebhooks {
  const { db, clock, audit } = deps;
  const entry = (action: string, outcome: 'success' | 'denied', requestId: string, extra: { subjectId?: string; recordId?: string } = {}) => ({
    actor: SHOPIFY_ACTOR.ref,
    action,
    collection: 'shopify_webhooks',
    outcome,
    requestId,
    ...extra,
  });

  async function match(c: z.output<typeof customer>): Promise<string | undefined> {
    const byId = c.id === undefined ? undefined : await deps.vault.customerIdBy(SHOPIFY_ID_FIELD, c.id);
    return byId ?? (c.email === undefined ? undefined : await deps.vault.customerIdByEmail(c.email));
  }

  async function handle(topic: ShopifyTopic, body: unknown, headerShop: string | undefined, webhookId: string, requestId: string): Promise<{ outcome: WebhookOutcome; request_id: string | null }> {
    const parse = <T extends { shop_domain: string }>(schema: z.ZodType<T>): T => {
      const parsed = schema.safeParse(body);
      if (!parsed.success) fail(RightsErrors.RIGHTS_SHOPIFY_WEBHOOK_INVALID, `the body is not the shape Shopify documents for ${topic}`);
      const shop = parsed.data.shop_domain;
      if ((deps.shopDomain !== undefined && shop !== deps.shopDomain) || (headerShop !== undefined && shop !== headerShop)) fail(RightsErrors.RIGHTS_SHOPIFY_SHOP_MISMATCH, 'the webhook names another shop');
      return parsed.data;
    };
    if (topic === 'shop/redact') return { outcome: 'shop_erasure_recorded', request_id: await deps.shopErasures.record({ shopDomain: parse(PAYLOADS[topic]).shop_domain, webhookId }) };
    const payload = parse(PAYLOADS[topic]);
    const customerId = await match(payload.customer);
    if (customerId === undefined) {
      await audit.append(entry('rights.shopify.no_data_held', 'success', requestId, { recordId: webhookId }));
      return { outcome: 'no_data_held', request_id: null };
    }
    const ctx: RightsContext = { actor: SHOPIFY_ACTOR, requestId };
    const input = { customerId, channel: 'integration' as const, verification: 'signed_webhook' as const };
    if (topic === 'customers/data_request') return { outcome: 'request_filed', request_id: (await deps.rights.create(ctx, { ...input, kind: 'access' })).id };
    const { request } = await deps.rights.requestErasure(ctx, input);
    // Accepted at once; the erasure runs behind the answer and is resumed if it is interrupted.
    await deps.erasure.accept(ctx, request.id);
    return { outcome: 'request_filed', request_id: request.id };
  }

  return {
    async receive(headers, rawBody, requestId) {
      if (deps.secret === undefined) fail(RightsErrors.RIGHTS_SHOPIFY_NOT_CONFIGURED, 'CUSTOS_SHOPIFY_WEBHOOK_SECRET is not set');
      if (!shopifySignatureValid(deps.secret.reveal(), rawBody, headers.hmac)) {
        await audit.append(entry('rights.shopify.signature_invalid', 'denied', requestId));
        fail(RightsErrors.RIGHTS_SHOPIFY_SIGNATURE_INVALID, 'the webhook signature does not verify');
      }
      if (deps.shopDomain !== undefined && headers.shopDomain !== deps.shopDomain) fail(RightsErrors.RIGHTS_SHOPIFY_SHOP_MISMATCH, 'the webhook is for another shop');
      const webhookId = headers.webhookId;
      if (webhookId === undefined || !/^[A-Za-z0-9._:-]{1,128}$/.test(webhookId) || headers.topic === undefined)
        fail(RightsErrors.RIGHTS_SHOPIFY_WEBHOOK_INVALID, 'X-Shopify-Webhook-Id and X-Shopify-Topic are required');
      const topic = SHOPIFY_TOPICS.find((t) => t === headers.topic);
      if (topic === undefined) fail(RightsErrors.RIGHTS_SHOPIFY_TOPIC_UNKNOWN, 'not a compliance webhook topic');
      let body: unknown;
      try {
        body = JSON.parse(rawBody.toString('utf8'));
      } catch {
        fail(RightsErrors.RIGHTS_SHOPIFY_WEBHOOK_INVALID, 'the body is not JSON');
      }
      // Claimed first, so a redelivery racing this one changes nothing; released if handling fails.
      const claimed = await db
        .insertInto('shopify_webhooks')
        .values({ webhook_id: webhookId, topic, shop_domain: headers.shopDomain ?? '', received_at: clock.now().toISOString(), outcome: 'received', request_id: null })
        .onConflict((oc) => oc.column('webhook_id').doNothing())
        .executeTakeFirst();
      if (Number(claimed.numInsertedOrUpdatedRows ?? 0n) !== 1) {
        const seen = await db.selectFrom('shopify_webhooks').select('request_id').where('webhook_id', '=', webhookId).executeTakeFirst();
        return { outcome: 'duplicate', request_id: seen?.request_id ?? null };
      }
      try {
        const result = await handle(topic, body, headers.shopDomain, webhookId, requestId);
        await db.updateTable('shopify_webhooks').set({ outcome: result.outcome, request_id: result.request_id }).where('webhook_id', '=', webhookId).execute();
        return result;
      } catch (error) {
        await db.deleteFrom('shopify_webhooks').where('webhook_id', '=', webhookId).execute();
        throw error;
      }
    },

    async list(limit) {
      return db.selectFrom('shopify_webhooks').selectAll().orderBy('received_at', 'desc').orderBy('webhook_id').limit(limit).execute();
    },
  };
}
