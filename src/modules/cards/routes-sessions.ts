import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ownOrigin } from '../../http/csrf.ts';
import { cardContext, customerIdField, errorBody, purposeHeader, tokenFormatField } from './routes.ts';
import type { CardSessions } from './sessions.ts';
import { COLLECT_PATH } from './collect-page.ts';

/**
 * Card sessions for shop backends (API key scope of src/app.ts, purpose `payments`): mint the
 * single-use publishable key a checkout page embeds the card fields with, and look a session up
 * afterwards (did it produce a token, which one).
 */
const sessionOut = {
  id: z.string().meta({ description: 'The session id (`cks_…`); the card fields send it with the token.' }),
  origin: z.string().meta({ description: 'The storefront origin that may embed the fields and receives the token.' }),
  customer_id: z.string().nullable(),
  token_format: z.enum(['opaque', 'format_preserving']),
  expires_at: z.string(),
};

export function registerCardSessionRoutes(app: FastifyInstance, deps: { sessions: CardSessions; publicUrl: string | undefined }) {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const security = [{ apiKey: [] }];

  r.post('/v1/cards/sessions', {
    schema: {
      tags: ['cards'],
      summary: 'Mint a single-use publishable key for the card fields of one checkout',
      description:
        'The answer holds the publishable key (shown once, valid 15 minutes, good for one tokenisation and nothing else) and the URL of the card fields to embed in an iframe on `origin`. The fields post the card straight to Custos and hand the token to the embedding page by postMessage; the shop never sees the card number.',
      security,
      headers: purposeHeader,
      body: z
        .strictObject({
          origin: z.string().max(200).optional().meta({ description: 'The storefront origin that embeds the fields, one of CUSTOS_STOREFRONT_ORIGINS; may be left out when only one is configured.' }),
          customer_id: customerIdField,
          token_format: tokenFormatField,
        })
        .meta({ id: 'CardSessionWrite' }),
      response: {
        201: z
          .object({
            ...sessionOut,
            publishable_key: z.string().meta({ description: '`cpk_…`: shown once; stored only as a keyed hash.' }),
            collect_url: z.string().meta({ description: 'The iframe `src`: the card fields with the publishable key in the fragment (never sent to a server in the URL).' }),
          })
          .meta({ id: 'CardSession' }),
        400: errorBody,
        401: errorBody,
        403: errorBody,
      },
    },
    handler: async (request, reply) => {
      const { key, session } = await deps.sessions.create(cardContext(request), request.body);
      const base = deps.publicUrl ?? ownOrigin(request) ?? '';
      return reply.code(201).send({ ...session, publishable_key: key.reveal(), collect_url: `${base}${COLLECT_PATH}#key=${key.reveal()}` });
    },
  });

  r.get('/v1/cards/sessions/:id', {
    schema: {
      tags: ['cards'],
      summary: 'A card session: open, used (with the token it produced) or expired',
      security,
      headers: purposeHeader,
      params: z.object({ id: z.string().regex(/^cks_[0-9A-HJKMNP-TV-Z]{26}$/) }),
      response: {
        200: z
          .object({
            ...sessionOut,
            created_at: z.string(),
            status: z.enum(['open', 'used', 'expired']),
            token: z.string().nullable().meta({ description: 'The card token the session produced, once used.' }),
          })
          .meta({ id: 'CardSessionState' }),
        400: errorBody,
        401: errorBody,
        403: errorBody,
        404: errorBody,
      },
    },
    handler: async (request) => deps.sessions.get(cardContext(request), request.params.id),
  });
}
