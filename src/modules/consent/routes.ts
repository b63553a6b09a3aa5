import { Readable } from 'node:stream';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { actorOf } from '../../http/auth.ts';
import type { Actor } from '../policy/service.ts';
import type { CallContext } from '../vault/service.ts';
import type { AudienceRequest } from './audience.ts';
import { verifyReceipt } from './receipts.ts';
import { SOURCES, type ConsentService, type Source } from './service.ts';

/**
 * The consent API: the shop records what the customer said (an API key scoped to `account`, or
 * staff), the customer does the same for themself, and anyone verifies a receipt against the
 * public keys.
 */
/** The one error shape (src/http/error-handler.ts), for the response schemas. */
export const errorBody = z.object({ error: z.object({ code: z.string(), message: z.string(), request_id: z.string() }).loose() });
const errors = { 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody };

const proof = z
  .object({
    text_sha256: z.string().regex(/^[0-9a-fA-F]{64}$/, 'a SHA-256 in hex'),
    channel: z.string().min(1).max(64),
    at: z.iso.datetime({ offset: true }),
  })
  .strict()
  .meta({ description: 'What the customer was shown (GDPR Art. 7(1)): the SHA-256 of the exact text, the channel, the time.' });

export const consentBody = z
  .object({
    purpose: z.string().min(1).max(64),
    granted: z.boolean(),
    source: z.string().min(1).max(32).meta({ description: `One of ${SOURCES.join(', ')}.` }),
    notice_version: z.number().int().min(0).max(2_147_483_647),
    proof: proof.optional(),
  })
  .strict()
  .meta({ id: 'ConsentChange' });

const recorded = z
  .object({
    id: z.string(),
    purpose: z.string(),
    status: z.enum(['granted', 'withdrawn', 'pending', 'objected', 'objection_upheld', 'objection_rejected']),
    source: z.string(),
    notice_version: z.number(),
    recorded_at: z.string(),
    in_force: z.boolean(),
    receipt: z.string().meta({ description: 'A compact JWS (EdDSA); verify with the keys at /v1/keys/receipts.' }),
  })
  .meta({ id: 'ConsentRecorded' });

export const consentState = z
  .object({
    customer_id: z.string(),
    notice_version: z.number(),
    purposes: z.array(
      z.object({
        purpose: z.string(),
        status: z.enum(['granted', 'withdrawn', 'pending', 'objected', 'objection_upheld', 'objection_rejected', 'none']),
        in_force: z.boolean(),
        needs_confirmation: z.boolean(),
        notice_version: z.number().nullable(),
        changed_in: z.number(),
        source: z.string().nullable(),
        at: z.string().nullable(),
      }),
    ),
    history: z.array(
      z.object({
        id: z.string(),
        purpose: z.string(),
        status: z.string(),
        source: z.string(),
        notice_version: z.number(),
        proof: z.object({ text_sha256: z.string(), channel: z.string(), at: z.string() }).nullable(),
        actor: z.string(),
        recorded_at: z.string(),
      }),
    ),
    gpc: z.object({ honored: z.boolean(), at: z.string().nullable() }),
  })
  .meta({ id: 'ConsentState' });

export const objectionBody = z.object({ purpose: z.string().min(1).max(64) }).strict();
const idParam = z.object({ id: z.string().regex(/^cus_[0-9A-HJKMNP-TV-Z]{26}$/, 'must be a cus_ id') });

/** Sources the shop's backend may record; `staff` only for a staff session. */
const shopSources = (actor: Actor): readonly Source[] => (actor.kind === 'staff' ? ['staff', 'gpc'] : ['web_form', 'api', 'import', 'gpc']);
/** Sources a customer records for themself. */
export const CUSTOMER_SOURCES: readonly Source[] = ['web_form', 'gpc'];

export type ConsentChange = z.output<typeof consentBody>;
export const asInput = (body: ConsentChange) => ({ ...body, source: body.source as Source });
export { recorded as consentRecorded };

/** The API-key routes (inside the API scope, behind its authentication). */
export function registerConsentApiRoutes(app: FastifyInstance, deps: { consent: ConsentService; audience: (ctx: CallContext & { purpose: string }, request: AudienceRequest) => AsyncGenerator<string> }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const tags = ['consents'];
  const security = [{ apiKey: [] }];
  const ctx = (request: FastifyRequest) => ({ actor: actorOf(request), requestId: request.id });

  r.post('/v1/customers/:id/consents', {
    schema: { tags, summary: "Record a customer's grant or withdrawal of consent", security, params: idParam, body: consentBody, response: { 201: recorded, ...errors } },
    handler: async (request, reply) => {
      const c = ctx(request);
      return reply.code(201).send(await deps.consent.record(c, request.params.id, asInput(request.body), shopSources(c.actor)));
    },
  });

  r.get('/v1/purposes/:purpose/audience', {
    schema: {
      tags,
      summary:
        'Customers whose consent to this purpose is in force now, with its fields (NDJSON, one customer a line, by customer id, streamed to the end or to `limit`; to resume, pass the last customer_id received as `cursor`)',
      security,
      params: z.object({ purpose: z.string().min(1).max(64) }),
      querystring: z.object({ limit: z.coerce.number().int().min(1).max(100_000_000).optional(), cursor: z.string().regex(/^cus_[0-9A-HJKMNP-TV-Z]{26}$/).optional() }),
      response: { 200: z.string().meta({ description: 'application/x-ndjson' }), ...errors },
    },
    handler: async (request, reply) => {
      const pages = deps.audience({ actor: actorOf(request), purpose: request.params.purpose, requestId: request.id }, request.query);
      // The first page before the headers: a failure there is still an error response. A later
      // failure cuts the connection, so a short list never looks complete.
      const first = await pages.next();
      async function* rest(): AsyncGenerator<string> {
        if (first.done === true) return;
        yield first.value;
        yield* pages;
      }
      // One page in the stream's buffer: the next is read (and audited) once the socket takes this one.
      const body = Readable.from(rest(), { objectMode: false, highWaterMark: 1 });
      return reply.type('application/x-ndjson').send(body as unknown as string); // a stream is sent as it is, never serialised
    },
  });

  r.post('/v1/customers/:id/objections', {
    schema: {
      tags,
      summary: "Record a customer's objection to a legitimate-interest purpose (GDPR Art. 21): its processing stops at once, pending the privacy officer",
      security,
      params: idParam,
      body: objectionBody,
      response: { 201: recorded, ...errors },
    },
    handler: async (request, reply) => reply.code(201).send(await deps.consent.object(ctx(request), request.params.id, request.body.purpose, 'api')),
  });

  r.get('/v1/customers/:id/consents', {
    schema: { tags, summary: 'Consent state per purpose, the full history, and the GPC status', security, params: idParam, response: { 200: consentState, ...errors } },
    handler: async (request) => deps.consent.state(ctx(request), request.params.id),
  });
}

/** Public routes: the receipts keys, receipt verification, the GPC support resource. */
export function registerConsentPublicRoutes(app: FastifyInstance, deps: { consent: ConsentService; gpcUpdated: () => Promise<string> }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const tags = ['consents'];

  r.get('/v1/keys/receipts', {
    schema: {
      tags,
      summary: 'The public keys of consent receipts (JWK set; retired keys kept)',
      response: {
        200: z.object({ keys: z.array(z.object({ kty: z.literal('OKP'), crv: z.literal('Ed25519'), x: z.string(), kid: z.string(), alg: z.literal('EdDSA'), use: z.literal('sig') })) }),
      },
    },
    handler: async (_request, reply) => {
      reply.header('cache-control', 'public, max-age=300');
      return { keys: await deps.consent.receipts.publicKeys() };
    },
  });

  r.post('/v1/receipts/verify', {
    schema: {
      tags,
      summary: 'Check a consent receipt: its signature and what it records',
      body: z.object({ receipt: z.string().min(1).max(8192) }).strict(),
      response: { 200: z.object({ valid: z.literal(true), kid: z.string(), payload: z.record(z.string(), z.unknown()) }), 400: errorBody },
    },
    handler: async (request) => ({ valid: true as const, ...(await verifyReceipt(deps.consent.receipts, request.body.receipt)) }),
  });

  r.get('/.well-known/gpc.json', {
    schema: { hide: true, response: { 200: z.object({ gpc: z.literal(true), lastUpdate: z.string() }) } },
    handler: async () => ({ gpc: true as const, lastUpdate: await deps.gpcUpdated() }),
  });
}
