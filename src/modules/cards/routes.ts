import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { actorOf } from '../../http/auth.ts';
import { fieldWriteSchema, type Inventory, type SchemaOptions } from '../inventory/index.ts';
import type { Relay } from './relay.ts';
import { CARDS_COLLECTION, type CardCallContext, type CardService } from './service.ts';

/**
 * The card vault API for shop backends (API key scope of src/app.ts): tokenise, read (never the
 * PAN), delete. Every call states `Custos-Purpose: payments`. Requests are validated here for
 * shape only; card rules (Luhn, brand, expiry) answer with codes of their own from the service,
 * and no answer or log line carries the submitted values.
 */
export const errorBody = z.object({ error: z.object({ code: z.string(), message: z.string(), request_id: z.string() }).loose() });
export const purposeHeader = z.object({
  'custos-purpose': z.string().max(64).optional().meta({ description: 'Card operations state `payments`.' }),
});
const tokenParam = z.object({ token: z.string().min(1).max(40).meta({ description: 'A card token: `tok_…` or a format-preserving token (12–19 digits).' }) });
const BRANDS = ['visa', 'mastercard', 'amex', 'discover', 'diners', 'jcb', 'unionpay', 'maestro'] as const;
export const customerIdField = z.string().regex(/^cus_[0-9A-HJKMNP-TV-Z]{26}$/, 'must be a cus_ id').optional();
export const tokenFormatField = z.enum(['opaque', 'format_preserving']).default('opaque');
export const cardOut = {
  token: z.string(),
  brand: z.enum(BRANDS),
  bin: z.string(),
  last4: z.string(),
  exp_month: z.number().int(),
  exp_year: z.number().int(),
};

/**
 * The fields of a card a customer enters (the API-key tokenisation adds customer and token format):
 * the cardholder name is free text like any other, so the inventory's own rules (control
 * characters, card numbers) apply to it.
 */
export function cardEntryShape(inventory: Inventory, schemaOptions: SchemaOptions) {
  const cardholderName = fieldWriteSchema(inventory.collections.get(CARDS_COLLECTION)!.fields.get('cardholder_name')!, schemaOptions);
  return {
    pan: z.string().max(40).meta({ description: 'The card number, digits only.' }),
    exp_month: z.number().int(),
    exp_year: z.number().int(),
    cardholder_name: (cardholderName as z.ZodType<string>).optional(),
    cvv: z.string().max(8).optional().meta({ description: 'Kept at most 10 minutes in memory for one relay call; never stored.' }),
  };
}

export function cardContext(request: FastifyRequest): CardCallContext {
  const purpose = request.headers['custos-purpose'];
  return { actor: actorOf(request), purpose: typeof purpose === 'string' ? purpose : undefined, requestId: request.id, clientAddress: request.ip };
}

export function registerCardRoutes(app: FastifyInstance, deps: { cards: CardService; relay: Relay; inventory: Inventory; schemaOptions: SchemaOptions }) {
  const { cards } = deps;
  const r = app.withTypeProvider<ZodTypeProvider>();
  const security = [{ apiKey: [] }];
  const errors = { 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody };

  r.post('/v1/cards', {
    // The whole answer is kept sealed, so a retry returns the first token instead of a second card.
    config: { idempotent: 'sealed' },
    schema: {
      tags: ['cards'],
      summary: 'Tokenise a payment card',
      description: 'Stores the card under the card-vault keys and answers its token; the PAN never leaves Custos again except through the relay.',
      security,
      headers: purposeHeader.extend({
        'idempotency-key': z.string().max(257).optional().meta({ description: 'Makes a retry safe: the same key and body within 24 hours return the first token; no second card is stored.' }),
      }),
      body: z
        .strictObject({
          ...cardEntryShape(deps.inventory, deps.schemaOptions),
          customer_id: customerIdField,
          token_format: tokenFormatField,
        })
        .meta({ id: 'CardWrite' }),
      response: { 201: z.object(cardOut).meta({ id: 'CardToken' }), ...errors },
    },
    handler: async (request, reply) => {
      const card = await cards.tokenise(cardContext(request), request.body);
      return reply.code(201).send({ token: card.token, brand: card.brand, bin: card.bin, last4: card.last4, exp_month: card.exp_month, exp_year: card.exp_year });
    },
  });

  r.get('/v1/cards/:token', {
    schema: {
      tags: ['cards'],
      summary: 'Read a card: brand, BIN, last four, expiry, cardholder name (never the PAN)',
      security,
      headers: purposeHeader,
      params: tokenParam,
      response: {
        200: z.object({ ...cardOut, cardholder_name: z.string().optional(), customer_id: z.string().nullable() }).meta({ id: 'Card' }),
        ...errors,
        410: errorBody,
      },
    },
    handler: async (request) => {
      const card = await cards.read(cardContext(request), request.params.token);
      return { ...card, customer_id: card.customer_id ?? null };
    },
  });

  r.delete('/v1/cards/:token', {
    schema: {
      tags: ['cards'],
      summary: 'Delete a card',
      security,
      headers: purposeHeader,
      params: tokenParam,
      response: { 204: z.null().meta({ description: 'Deleted.' }), ...errors, 410: errorBody },
    },
    handler: async (request, reply) => {
      await cards.remove(cardContext(request), request.params.token);
      return reply.code(204).send(null);
    },
  });

  r.post('/v1/relay', {
    config: { idempotent: 'sealed' },
    schema: {
      tags: ['cards'],
      summary: 'Forward a request to the payment processor with card data in place of token placeholders',
      description:
        'Placeholders `{{ <token>.pan }}` (also `.cvv`, `.exp_month`, `.exp_year`, `.cardholder_name`) in header values and in a JSON or form body are replaced, escaped for the content type. Only origins on CUSTOS_RELAY_ALLOWLIST; no redirects followed; bodies bounded; card numbers in the answer replaced by their tokens.',
      security,
      headers: purposeHeader.extend({
        'idempotency-key': z.string().max(257).optional().meta({ description: 'A retry with the same key and body within 24 hours gets the first answer back without a second call to the processor (never charges twice); while the first runs, 409.' }),
      }),
      body: z
        .strictObject({
          url: z.string().max(2048),
          method: z.enum(['GET', 'POST', 'PUT', 'PATCH', 'DELETE']),
          headers: z.record(z.string().regex(/^[A-Za-z0-9!#$%&'*+.^_`|~-]{1,64}$/), z.string().max(8192)).optional(),
          body: z.union([z.string(), z.record(z.string(), z.unknown()), z.array(z.unknown())]).optional(),
        })
        .meta({ id: 'RelayRequest' }),
      response: {
        200: z.object({ status: z.number().int(), headers: z.record(z.string(), z.string()), body: z.string() }).meta({ id: 'RelayResponse' }),
        ...errors,
        409: errorBody,
        410: errorBody,
        413: errorBody,
        502: errorBody,
      },
    },
    handler: async (request) => deps.relay.forward(cardContext(request), request.body),
  });
}
