import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { actorOf } from '../../http/auth.ts';
import { requireSession } from '../../http/session.ts';
import { fail } from '../../kernel/errors.ts';
import { linkedCustomer, type CustomerLinkDeps } from '../identity/accounts/customer-link.ts';
import type { AccountService } from '../identity/accounts/account-service.ts';
import { customerActor } from '../identity/sessions/session-guard.ts';
import type { Directory } from '../staff/directory.ts';
import { staffMemberId } from '../staff/guard.ts';
import type { VaultErasure } from '../vault/erasure.ts';
import type { ErasureService } from './erasure.ts';
import type { ProcessorNotices } from '../processors/notices.ts';
import { EXPORT_KINDS, type ExportService } from './export.ts';
import type { RestrictionService } from './restrictions.ts';
import { RightsErrors } from './errors.ts';
import type { ReceiptJwk } from './receipt.ts';
import { RIGHTS_PURPOSE } from './module.ts';
import type { RequestKind } from './deadlines.ts';
import { REQUEST_KINDS, STAFF_VERIFICATION_METHODS, STATES, type RequestView, type RightsContext, type RightsService, type VerificationMethod } from './service.ts';

/**
 * The rights API. Shop backends (an API key scoped to the `rights` purpose) and staff (a staff
 * session whose role grants `rights.manage`) file and work requests under /v1/rights and erase
 * through `DELETE /v1/customers/{id}`; customers file their own under /v1/me/rights-requests.
 * A customer session, an API key and a signed integration count as verified; staff name how they
 * verified the requester, or the request waits in `verifying_identity`.
 */
const errorBody = z.object({ error: z.object({ code: z.string(), message: z.string(), request_id: z.string() }).loose() });
const errors = { 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody, 409: errorBody };
const requestIdParam = z.object({ id: z.string().regex(/^rrq_[0-9A-HJKMNP-TV-Z]{26}$/, 'must be an rrq_ id') });
const customerIdParam = z.object({ id: z.string().regex(/^cus_[0-9A-HJKMNP-TV-Z]{26}$/, 'must be a cus_ id') });
const kind = z.enum(REQUEST_KINDS);
/** A requested kind is checked by the handler, so that an unknown one answers RIGHTS_KIND_UNKNOWN. */
const requestedKind = z.string().max(40).meta({ description: `One of ${REQUEST_KINDS.join(', ')}.`, examples: ['access'] });
function knownKind(value: string): RequestKind {
  const found = REQUEST_KINDS.find((k) => k === value);
  if (found === undefined) fail(RightsErrors.RIGHTS_KIND_UNKNOWN, `kind must be one of ${REQUEST_KINDS.join(', ')}`);
  return found;
}
const state = z.enum(STATES);

export const requestSchema = z
  .object({
    id: z.string(),
    kind,
    customer_id: z.string(),
    jurisdiction: z.enum(['gdpr', 'ccpa']),
    state,
    channel: z.string(),
    identity_verification: z.string().nullable(),
    received_at: z.string(),
    due_on: z.string().meta({ description: 'The last day to answer (UTC calendar date).' }),
    due_at: z.string().meta({ description: 'The end of the last day to answer.' }),
    due_soon: z.boolean().meta({ description: 'Open, and seven days or fewer left.' }),
    acknowledge_by: z.string().nullable().meta({ description: 'The last day to acknowledge receipt (CCPA); null where the law asks for none.' }),
    extended: z.boolean(),
    paused_days: z.number().int(),
    reason: z.string().nullable(),
    closed_at: z.string().nullable(),
    receipt: z.string().nullable().meta({ description: 'Erasure: the signed receipt (JWS, EdDSA; keys at /v1/rights/receipt-keys).' }),
    erasure_stage: z
      .enum(['accepted', 'planned', 'held', 'account_closed', 'shredded'])
      .nullable()
      .meta({ description: 'Erasure: the last step done. From `accepted` on nothing of the customer is released; `held`: held fields re-sealed under hold keys; `shredded`: the data key destroyed and the records deleted.' }),
    export: z
      .object({
        url: z.string().nullable().meta({ description: 'The download page, the token in its fragment; null once used or expired, and in shop views of a request the customer filed.' }),
        token: z.string().nullable().meta({ description: 'The link token, for `POST /v1/exports/download` `{ "token" }`; null where `url` is.' }),
        expires_at: z.string(),
        downloaded_at: z.string().nullable(),
      })
      .nullable()
      .optional()
      .meta({ description: 'Access and portability: the export made when the request completed (signed, single-use, expiring link).' }),
    history: z.array(z.object({ state, at: z.string(), actor: z.string(), reason: z.string().nullable() })),
  })
  .meta({ id: 'RightsRequest' });

export const restrictionSchema = z
  .object({
    restricted: z.boolean(),
    request_id: z.string().nullable(),
    since: z.string().nullable(),
    allowed_purposes: z.array(z.string()).meta({ description: 'Purposes the customer consented to despite the restriction (GDPR Art. 18(2)).' }),
    lifts_at: z.string().nullable().meta({ description: 'When the restriction ends, once the customer was told (Art. 18(3)); null: until lifted.' }),
    lift_reason: z.string().nullable(),
  })
  .meta({ id: 'Restriction' });

const planSchema = z
  .object({
    customer_id: z.string(),
    bookkeeping_country: z.string(),
    erase: z.array(z.object({ collection: z.string(), records: z.number().int(), fields: z.array(z.string()) })),
    hold: z.array(z.object({ collection: z.string(), record_id: z.string(), fields: z.array(z.string()), until: z.string(), ground: z.string() })),
  })
  .meta({ id: 'ErasurePlan' });
const heldSchema = z.object({
  data: z.array(
    z.object({ record_id: z.string(), collection: z.string(), held_until: z.string(), ground: z.string(), values: z.record(z.string(), z.unknown()) }),
  ),
});
const jwks = z.object({ keys: z.array(z.object({ kty: z.string(), crv: z.string(), x: z.string(), kid: z.string(), alg: z.string(), use: z.string() })) });
const purposeHeader = z.object({ 'custos-purpose': z.string().max(64).optional().meta({ description: 'Held records are released only for `legal_obligation`.' }) });

export interface RightsRouteDeps {
  readonly rights: RightsService;
  readonly erasure: ErasureService;
  readonly exports: ExportService;
  readonly restrictions: RestrictionService;
  readonly vaultErasure: Pick<VaultErasure, 'openHeld'>;
  readonly receiptKeys: () => { keys: ReceiptJwk[] };
  readonly directory: Pick<Directory, 'authorizeMember'>;
  /** Who was told of each request (GDPR Art. 19) and whether they confirmed. */
  readonly notices: Pick<ProcessorNotices, 'forRequest' | 'list' | 'confirm' | 'retry'>;
}

const noticeSchema = z
  .object({
    id: z.string(),
    processor_id: z.string(),
    processor_name: z.string(),
    status: z.enum(['pending', 'confirmed', 'dead', 'awaiting_confirmation']).meta({
      description: '`pending`: the webhook is being sent or retried; `dead`: every attempt failed (the dead-letter list); `awaiting_confirmation`: no endpoint, staff confirm; `confirmed`: a 2xx or a staff mark.',
    }),
    attempts: z.number().int(),
    next_attempt_at: z.string().nullable(),
    last_error: z.string().nullable().meta({ description: 'The WEBHOOK_* code of the last failed attempt.' }),
    confirmed_at: z.string().nullable(),
    confirmed_by: z.string().nullable().meta({ description: '`webhook`, or the staff member who marked it.' }),
  })
  .meta({ id: 'RecipientNotice' });
const noticeParams = z.object({
  id: requestIdParam.shape.id,
  processor_id: z.string().regex(/^prc_[0-9A-HJKMNP-TV-Z]{26}$/, 'must be a prc_ id'),
});

/**
 * The one check of who may work data-subject requests through the API scope: an API key scoped to
 * `rights`, or a staff member holding `rights.manage` (active, second factor enrolled).
 */
export async function rightsCaller(request: FastifyRequest, directory: RightsRouteDeps['directory']): Promise<RightsContext & { staff: boolean }> {
  const actor = actorOf(request);
  if (actor.kind === 'staff') {
    const memberId = staffMemberId(actor.ref);
    if (memberId === undefined) fail(RightsErrors.RIGHTS_PURPOSE_REQUIRED, 'this caller may not work data-subject requests');
    await directory.authorizeMember({ memberId }, 'rights.manage');
    return { actor, requestId: request.id, staff: true };
  }
  if (actor.kind !== 'apikey' || !actor.purposes.includes(RIGHTS_PURPOSE))
    fail(RightsErrors.RIGHTS_PURPOSE_REQUIRED, `data-subject requests need an API key scoped to the ${RIGHTS_PURPOSE} purpose`);
  return { actor, requestId: request.id, staff: false };
}

/**
 * Completes what needs nobody's decision once the requester is verified: an access or portability
 * request (its export), a restriction (in force at once, Art. 18(1)); or a completion staff asked for.
 */
function answering(exports: ExportService, restrictions: RestrictionService) {
  return async (ctx: RightsContext, view: RequestView, allowPurposes?: readonly string[]): Promise<RequestView> => {
    if (EXPORT_KINDS.includes(view.kind)) return exports.complete(ctx, view.id);
    if (view.kind === 'restriction') return restrictions.apply(ctx, view.id, allowPurposes);
    return view;
  };
}
const answersAtOnce = (view: RequestView) => view.state === 'in_progress' && (EXPORT_KINDS.includes(view.kind) || view.kind === 'restriction');

/** Routes in the API-key scope of src/app.ts. */
export function registerRightsRoutes(app: FastifyInstance, deps: RightsRouteDeps): void {
  const { rights, directory, erasure, exports } = deps;
  const r = app.withTypeProvider<ZodTypeProvider>();
  const tags = ['rights'];
  const shown = async (view: RequestView) => ({ ...view, export: await exports.viewOf(view, 'shop') });
  const answer = answering(exports, deps.restrictions);

  /**
   * The customer's one erasure request, filed or found; a verified one is accepted at once and runs
   * behind the answer (a repeat resumes an interrupted run). Staff who have not verified the
   * requester leave it waiting.
   */
  async function fileErasure(caller: RightsContext & { staff: boolean }, customerId: string, verification: VerificationMethod | undefined) {
    const { request: filed, created } = await rights.requestErasure(caller, {
      customerId,
      channel: caller.staff ? 'staff' : 'api_key',
      verification: caller.staff ? (verification ?? null) : 'api_key',
    });
    const runnable = filed.state === 'in_progress' || filed.state === 'extended';
    return { request: runnable ? await erasure.accept(caller, filed.id) : filed, created };
  }

  r.post('/v1/rights/requests/:id/erasure', {
    schema: {
      tags,
      summary: 'Run (or resume) an erasure request',
      description:
        'Accepts the request (from then on nothing of the customer is released) and runs it behind the answer: holds what bookkeeping law requires under hold keys, closes the sign-in accounts, destroys the data key and deletes the records, then completes the request with a signed receipt. Answers with the request as it stands (`erasure_stage` shows the progress). Safe to repeat.',
      params: requestIdParam,
      response: { 200: requestSchema, ...errors },
    },
    handler: async (request) => shown(await erasure.accept(await rightsCaller(request, directory), request.params.id)),
  });

  r.get('/v1/customers/:id/erasure-plan', {
    schema: { tags, summary: 'What an erasure of this customer would erase and hold, and until when', params: customerIdParam, response: { 200: planSchema, ...errors } },
    handler: async (request) => {
      await rightsCaller(request, directory);
      return erasure.plan(request.params.id);
    },
  });

  r.get('/v1/customers/:id/held-records', {
    schema: {
      tags,
      summary: 'Records held for bookkeeping law after an erasure (legal_obligation only)',
      params: customerIdParam,
      headers: purposeHeader,
      response: { 200: heldSchema, ...errors },
    },
    handler: async (request) => {
      const purpose = request.headers['custos-purpose'];
      return { data: await deps.vaultErasure.openHeld(actorOf(request), purpose, request.params.id, request.id) };
    },
  });

  r.get('/v1/rights/receipt-keys', {
    schema: { tags, summary: 'The public keys erasure receipts are signed with (JWK set)', response: { 200: jwks, ...errors } },
    handler: async (request) => {
      await rightsCaller(request, directory);
      return deps.receiptKeys();
    },
  });

  r.post('/v1/rights/requests', {
    schema: {
      tags,
      summary: 'File a data-subject request for a customer',
      description:
        'With an API key scoped to `rights` the requester counts as verified. Staff holding `rights.manage` name how they verified the requester in `identity_verification`; without it the request waits in `verifying_identity`, and the GDPR clock stands still.',
      body: z
        .object({ kind: requestedKind, customer_id: customerIdParam.shape.id, jurisdiction: z.enum(['gdpr', 'ccpa']).optional(), identity_verification: z.enum(STAFF_VERIFICATION_METHODS).optional() })
        .strict(),
      response: { 200: requestSchema, 201: requestSchema, ...errors },
    },
    handler: async (request, reply) => {
      const caller = await rightsCaller(request, directory);
      const body = request.body;
      const kind = knownKind(body.kind);
      if (kind === 'erasure') {
        const { request: filed, created } = await fileErasure(caller, body.customer_id, body.identity_verification);
        return reply.code(created ? 201 : 200).send(await shown(filed));
      }
      const verification: VerificationMethod | null = caller.staff ? (body.identity_verification ?? null) : 'api_key';
      const filed = await rights.create(caller, {
        kind,
        customerId: body.customer_id,
        channel: caller.staff ? 'staff' : 'api_key',
        verification,
        jurisdiction: body.jurisdiction,
      });
      return reply.code(201).send(await shown(answersAtOnce(filed) ? await answer(caller, filed) : filed));
    },
  });

  r.get('/v1/rights/requests', {
    schema: {
      tags,
      summary: 'Open data-subject requests, soonest deadline first',
      querystring: z.object({ customer_id: customerIdParam.shape.id.optional() }).strict(),
      response: { 200: z.object({ data: z.array(requestSchema) }), ...errors },
    },
    handler: async (request) => {
      await rightsCaller(request, directory);
      return { data: await Promise.all((await rights.list({ customerId: request.query.customer_id })).map(shown)) };
    },
  });

  r.get('/v1/rights/requests/:id', {
    schema: {
      tags,
      summary: 'One data-subject request with its history and the recipients told of it',
      params: requestIdParam,
      response: { 200: requestSchema.extend({ recipients: z.array(noticeSchema) }).meta({ id: 'RightsRequestWithRecipients' }), ...errors },
    },
    handler: async (request) => {
      await rightsCaller(request, directory);
      const view = await shown(await rights.get(request.params.id));
      return { ...view, recipients: await deps.notices.forRequest(view.id) };
    },
  });

  r.get('/v1/rights/notices', {
    schema: {
      tags,
      summary: 'Notices to recipients by status (status=dead: the dead-letter list)',
      querystring: z.object({ status: noticeSchema.shape.status.optional() }),
      response: { 200: z.object({ data: z.array(noticeSchema.extend({ request_id: z.string() })) }), ...errors },
    },
    handler: async (request) => {
      await rightsCaller(request, directory);
      return { data: await deps.notices.list({ status: request.query.status }) };
    },
  });

  r.post('/v1/rights/requests/:id/recipients/:processor_id/confirm', {
    schema: { tags, summary: 'Mark that a recipient confirmed (one with no endpoint, or confirmed another way)', params: noticeParams, response: { 200: noticeSchema, ...errors } },
    handler: async (request) => {
      const caller = await rightsCaller(request, directory);
      return deps.notices.confirm(caller.actor.ref, request.params.id, request.params.processor_id, request.id);
    },
  });

  r.post('/v1/rights/requests/:id/recipients/:processor_id/retry', {
    schema: { tags, summary: 'Send a notice on the dead-letter list again', params: noticeParams, response: { 200: noticeSchema, ...errors } },
    handler: async (request) => {
      const caller = await rightsCaller(request, directory);
      return deps.notices.retry(caller.actor.ref, request.params.id, request.params.processor_id, request.id);
    },
  });

  r.post('/v1/rights/requests/:id/transitions', {
    schema: {
      tags,
      summary: 'Move a data-subject request to its next state',
      description: 'States and transitions: docs/rights-requests.md. Denying and extending need the reason told to the customer.',
      params: requestIdParam,
      body: z
        .object({
          to: state,
          reason: z.string().trim().max(1000).optional(),
          identity_verification: z.enum(STAFF_VERIFICATION_METHODS).optional(),
        })
        .strict(),
      response: { 200: requestSchema, ...errors },
    },
    handler: async (request) => {
      const caller = await rightsCaller(request, directory);
      const { to, reason, identity_verification } = request.body;
      const id = request.params.id;
      // Completing an access or portability request produces its export; a restriction's puts it in force.
      if (to === 'completed') {
        const current = await rights.get(id);
        if (EXPORT_KINDS.includes(current.kind) || current.kind === 'restriction') return shown(await answer(caller, current));
      }
      return shown(await rights.transition(caller, id, { to, reason, verification: identity_verification }));
    },
  });

  r.delete('/v1/customers/:id', {
    schema: {
      tags: ['customers'],
      summary: "Erase a customer (files an erasure request)",
      description:
        'Shorthand for an erasure request (GDPR Art. 17): `202` with the request. The request is accepted at once — from then on nothing of the customer is released to anyone (`POLICY_SUBJECT_ERASED`, then `VAULT_NOT_FOUND` once the records are gone) — and the erasure runs behind the answer (`state` becomes `completed`, with the receipt, when done; `erasure_stage` shows the progress). Repeating it answers `202` with the same request. Needs an API key scoped to `rights` (or a staff session holding `rights.manage`).',
      params: customerIdParam,
      response: { 202: requestSchema, ...errors },
    },
    handler: async (request, reply) => {
      const caller = await rightsCaller(request, directory);
      return reply.code(202).send(await shown((await fileErasure(caller, request.params.id, undefined)).request));
    },
  });
}

export interface MeRightsRouteDeps {
  readonly rights: RightsService;
  readonly erasure: ErasureService;
  readonly exports: ExportService;
  readonly restrictions: RestrictionService;
  readonly accounts: Pick<AccountService, 'get'> & CustomerLinkDeps['accounts'];
  readonly vault: CustomerLinkDeps['vault'];
}

/** The customer's own requests, in the customer session scope (identity/routes/routes.ts). */
export function registerMeRightsRoutes(app: FastifyInstance, deps: MeRightsRouteDeps): void {
  const { rights, accounts, vault, erasure, exports } = deps;
  const r = app.withTypeProvider<ZodTypeProvider>();
  const tags = ['me'];
  const shown = async (view: RequestView) => ({ ...view, export: await exports.viewOf(view, 'customer') });
  const answer = answering(exports, deps.restrictions);

  async function self(request: FastifyRequest): Promise<{ ctx: RightsContext; customerId: string }> {
    const auth = requireSession(request);
    const account = await accounts.get(auth.session.accountId);
    const customerId = await linkedCustomer({ accounts, vault }, account, request.id);
    return { ctx: { actor: customerActor(customerId), requestId: request.id }, customerId };
  }
  const mine = (view: RequestView, customerId: string) => {
    // Someone else's request is answered exactly like one that does not exist.
    if (view.customer_id !== customerId) fail(RightsErrors.RIGHTS_REQUEST_NOT_FOUND, 'no data-subject request with that id');
    return view;
  };

  r.post('/v1/me/rights-requests', {
    schema: {
      tags,
      summary: 'Ask for my data, its correction or erasure, or object to or restrict its use',
      description:
        'Access and portability are answered at once (the export link is mailed and shown here and in `GET /v1/me`); a restriction is in force at once. With a restriction, `allow_purposes` names the purposes I still consent to (GDPR Art. 18(2)).',
      body: z
        .object({
          kind: requestedKind,
          allow_purposes: z.array(z.string().max(64)).max(32).optional().meta({ description: 'Restriction only: purposes my data may still be used for.' }),
        })
        .strict(),
      response: { 201: requestSchema, ...errors },
    },
    handler: async (request, reply) => {
      const requested = knownKind(request.body.kind);
      deps.restrictions.checkPurposes(request.body.allow_purposes ?? []);
      const { ctx, customerId } = await self(request);
      const input = { customerId, channel: 'customer' as const, verification: 'customer_session' as const };
      if (requested === 'erasure') return reply.code(201).send(await shown(await erasure.accept(ctx, (await rights.requestErasure(ctx, input)).request.id)));
      const filed = await rights.create(ctx, { ...input, kind: requested });
      return reply.code(201).send(await shown(answersAtOnce(filed) ? await answer(ctx, filed, request.body.allow_purposes) : filed));
    },
  });

  r.get('/v1/me/erasure-plan', {
    schema: { tags, summary: 'What erasing my account would erase and hold, and until when', response: { 200: planSchema, ...errors } },
    handler: async (request) => {
      const { customerId } = await self(request);
      return erasure.plan(customerId);
    },
  });

  r.get('/v1/me/restriction', {
    schema: { tags, summary: 'Whether the use of my data is restricted (GDPR Art. 18), and until when', response: { 200: restrictionSchema, ...errors } },
    handler: async (request) => deps.restrictions.view((await self(request)).customerId),
  });

  r.get('/v1/me/rights-requests', {
    schema: { tags, summary: 'My data-subject requests', response: { 200: z.object({ data: z.array(requestSchema) }), ...errors } },
    handler: async (request) => {
      const { customerId } = await self(request);
      return { data: await Promise.all((await rights.list({ customerId })).map(shown)) };
    },
  });

  r.get('/v1/me/rights-requests/:id', {
    schema: { tags, summary: 'One of my data-subject requests', params: requestIdParam, response: { 200: requestSchema, ...errors } },
    handler: async (request) => {
      const { customerId } = await self(request);
      return shown(mine(await rights.get(request.params.id), customerId));
    },
  });
}
