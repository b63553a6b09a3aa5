import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { originVerdict } from '../../http/csrf.ts';
import { AppError, fail } from '../../kernel/errors.ts';
import type { FailureBudget } from '../identity/throttling/auth-failures.ts';
import type { Inventory, SchemaOptions } from '../inventory/index.ts';
import type { CollectPage } from './collect-page.ts';
import { CardErrors } from './errors.ts';
import { cardEntryShape, cardOut, errorBody } from './routes.ts';
import type { CardSessions } from './sessions.ts';

/**
 * The card fields a checkout embeds (/cards/collect, its script, stylesheet and script inventory)
 * and the one call they make, `POST /v1/cards/collect` with a publishable key — in a scope of
 * their own, beside the API-key scope, whose authentication they do not share.
 *
 * Cross-origin: the fields call from Custos's own origin; a storefront origin
 * (CUSTOS_STOREFRONT_ORIGINS) may also call directly (CORS, preflight answered for it alone); a
 * request naming any other Origin is refused before its key is looked at, without CORS headers.
 */
const COLLECT_API = '/v1/cards/collect';
const PREFLIGHT_MAX_AGE = '600';

export function registerCollectRoutes(
  app: FastifyInstance,
  deps: { sessions: CardSessions; page: CollectPage; storefrontOrigins: readonly string[]; publicUrl: string | undefined; failures: FailureBudget; inventory: Inventory; schemaOptions: SchemaOptions },
): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const { page } = deps;
  app.decorateRequest('storefront', undefined);

  for (const file of page.files) {
    app.get(file.path, { schema: { hide: true } }, async (request, reply) => {
      if (page.altered.length > 0) fail(CardErrors.CARDS_COLLECT_PAGE_ALTERED, 'the card collection page differs from its release manifest and is withheld');
      if (file.kind === 'page') reply.removeHeader('x-frame-options').headers(page.headers);
      else reply.header('cache-control', 'no-cache');
      return reply.type(file.type).send(file.body);
    });
  }
  app.get(`${page.files[0]!.path}/scripts.json`, { schema: { hide: true } }, async (_request, reply) => reply.header('cache-control', 'no-cache').send(page.inventory()));

  /**
   * The storefront origin a request comes from, or undefined from Custos's own origin or a client
   * naming none; any other Origin is refused (CARDS_ORIGIN_NOT_ALLOWED). CORS headers only for a storefront.
   */
  function storefrontOf(request: FastifyRequest, reply: FastifyReply): string | undefined {
    const origin = request.headers.origin;
    if (origin === undefined || origin === '') return undefined;
    reply.header('vary', 'Origin');
    if (deps.storefrontOrigins.includes(origin)) {
      reply.header('access-control-allow-origin', origin);
      return origin;
    }
    if (originVerdict(request, deps.publicUrl) === 'same') return undefined;
    fail(CardErrors.CARDS_ORIGIN_NOT_ALLOWED, 'cross-origin card collection is open to the configured storefront origins only');
  }

  app.options(COLLECT_API, { schema: { hide: true } }, async (request, reply) => {
    if (storefrontOf(request, reply) === undefined) fail(CardErrors.CARDS_ORIGIN_NOT_ALLOWED, 'cross-origin card collection is open to the configured storefront origins only');
    return reply
      .code(204)
      .header('access-control-allow-methods', 'POST')
      .header('access-control-allow-headers', 'authorization, content-type')
      .header('access-control-max-age', PREFLIGHT_MAX_AGE)
      .send();
  });

  r.post(COLLECT_API, {
    // Before the body is read: a foreign origin, or an address blocked for failed keys, gets no further.
    onRequest: async (request, reply) => {
      deps.failures.admit(request.ip);
      request.storefront = storefrontOf(request, reply);
    },
    schema: {
      tags: ['cards'],
      summary: 'Tokenise the card a customer entered, with a publishable key (the card fields of /cards/collect)',
      description:
        'Spends the publishable key of a card session (`Authorization: Bearer cpk_…`) on one card; the token is bound to the customer and format the session names. A refused card (Luhn, expiry, …) leaves the key unspent. Called by the card fields Custos serves; a storefront origin may call it directly (CORS).',
      body: z.strictObject(cardEntryShape(deps.inventory, deps.schemaOptions)).meta({ id: 'CardEntry' }),
      response: {
        201: z
          .object({
            ...cardOut,
            session: z.string().meta({ description: 'The card session (`cks_…`).' }),
            origin: z.string().meta({ description: 'The storefront origin of the session: the card fields hand the token to it alone.' }),
          })
          .meta({ id: 'CollectedCard' }),
        400: errorBody,
        401: errorBody,
        403: errorBody,
        409: errorBody,
      },
    },
    handler: async (request, reply) => {
      const auth = /^Bearer\s+(\S+)$/i.exec(request.headers.authorization ?? '')?.[1];
      // A request that presents no key is told so and counts nothing against its address.
      if (auth === undefined) fail(CardErrors.CARDS_SESSION_KEY_INVALID, 'send Authorization: Bearer <publishable key>');
      try {
        const card = await deps.sessions.collect({ requestId: request.id, clientAddress: request.ip, storefrontOrigin: request.storefront }, auth, request.body);
        return reply.code(201).send({ token: card.token, brand: card.brand, bin: card.bin, last4: card.last4, exp_month: card.exp_month, exp_year: card.exp_year, session: card.session, origin: card.origin });
      } catch (error) {
        if (error instanceof AppError && error.code === CardErrors.CARDS_SESSION_KEY_INVALID.code) await deps.failures.failed(request.ip);
        throw error;
      }
    },
  });
}

declare module 'fastify' {
  interface FastifyRequest {
    /** POST /v1/cards/collect: the storefront origin of a cross-origin call. */
    storefront?: string | undefined;
  }
}
