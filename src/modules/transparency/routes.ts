import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorBody } from '../consent/routes.ts';
import { actorOf } from '../../http/auth.ts';
import { NOTICE_LANGUAGES, type NoticeLanguage } from '../inventory/index.ts';
import type { PolicyService } from '../policy/service.ts';
import type { StaffServices } from '../staff/services.ts';
import { staffMemberId } from '../staff/guard.ts';
import { fail } from '../../kernel/errors.ts';
import { ApiKeyErrors } from '../apikeys/errors.ts';
import { dataMap, NOTICE_CSS, noticeHtml, privacyNotice, ropa, ropaCsv, type Sources } from './notice.ts';

const recipient = z.object({
  name: z.string(),
  role: z.enum(['processor', 'controller']),
  role_text: z.string(),
  purposes: z.array(z.string()),
  categories: z.array(z.string()),
  country: z.string(),
  safeguard: z.string().nullable(),
  safeguard_text: z.string().nullable(),
  outside_eea: z.boolean(),
});
const notice = z
  .object({
    version: z.number(),
    language: z.enum(NOTICE_LANGUAGES),
    title: z.string(),
    controller: z.object({ name: z.string(), address: z.string().nullable(), privacy_contact: z.string().nullable(), dpo_contact: z.string().nullable() }),
    purposes: z.array(
      z.object({
        purpose: z.string(),
        description: z.string(),
        legal_bases: z.array(z.string()),
        legal_basis_text: z.array(z.string()),
        consent_based: z.boolean(),
        sale_or_sharing: z.boolean(),
        fields: z.array(z.string()),
        categories: z.array(z.string()),
        retention: z.array(z.string()),
        recipients: z.array(z.string()),
      }),
    ),
    recipients: z.array(recipient),
    past_recipients: z.array(recipient.extend({ ended: z.string().nullable() })),
    rights: z.array(z.string()),
    gpc: z.string(),
  })
  .meta({ id: 'PrivacyNotice' });
const ropaRow = z.object({
  controller: z.string(),
  controller_contact: z.string().nullable(),
  dpo_contact: z.string().nullable(),
  purpose: z.string(),
  description: z.string(),
  legal_bases: z.array(z.string()),
  data_subjects: z.array(z.string()),
  data_categories: z.array(z.string()),
  recipients: z.array(z.string()),
  third_country_transfers: z.array(z.string()),
  erasure_time_limits: z.array(z.string()),
  security_measures: z.array(z.string()),
});
const mapSchema = z.object({
  collections: z.array(
    z.object({
      name: z.string(),
      fields: z.array(
        z.object({
          name: z.string(),
          category: z.string(),
          protection: z.string(),
          retention: z.string(),
          purposes: z.array(z.object({ purpose: z.string(), basis: z.string(), access: z.string() })),
          processors: z.array(z.string()),
        }),
      ),
    }),
  ),
});

/** The language asked for: `?lang=` first, then the first supported language in Accept-Language, else English. */
export function noticeLanguage(request: FastifyRequest, lang: string | undefined): NoticeLanguage {
  const supported = (l: string): l is NoticeLanguage => (NOTICE_LANGUAGES as readonly string[]).includes(l);
  if (lang !== undefined && supported(lang)) return lang;
  const ranked = (request.headers['accept-language'] ?? '')
    .split(',')
    .map((part) => {
      const [tag = '', ...params] = part.trim().split(';');
      const q = params.map((p) => /^\s*q=([0-9.]+)\s*$/.exec(p)?.[1]).find((v) => v !== undefined);
      return { l: tag.trim().toLowerCase().split('-')[0] ?? '', q: q === undefined ? 1 : Number(q) };
    })
    .filter((x) => x.q > 0)
    .sort((a, b) => b.q - a.q);
  return ranked.map((x) => x.l).find(supported) ?? 'en';
}

/** The public privacy notice (HTML or JSON by Accept; English or German). */
export function registerNoticeRoutes(app: FastifyInstance, deps: { sources: () => Promise<Sources>; version: () => number }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const tags = ['transparency'];
  r.get('/v1/privacy-notice', {
    schema: {
      tags,
      summary: 'The privacy notice, generated from the inventory, the processor registry and the controller settings (HTML or JSON by Accept)',
      querystring: z.object({ lang: z.enum(NOTICE_LANGUAGES).optional() }),
      response: { 200: z.union([notice, z.string()]), 400: errorBody },
    },
    handler: async (request, reply) => {
      const n = privacyNotice(await deps.sources(), deps.version(), noticeLanguage(request, request.query.lang));
      reply.header('content-language', n.language).header('vary', 'Accept, Accept-Language');
      if (!/text\/html/.test(request.headers.accept ?? '')) return n;
      reply.header('content-security-policy', "default-src 'none'; style-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'");
      return reply.type('text/html; charset=utf-8').send(noticeHtml(n));
    },
  });
  r.get('/v1/privacy-notice.css', {
    schema: { hide: true, response: { 200: z.string() } },
    handler: async (_request, reply) => reply.header('cache-control', 'public, max-age=3600').type('text/css; charset=utf-8').send(NOTICE_CSS),
  });
}

/** The record of processing and the data map (API scope): a key scoped to account, or staff holding privacy.manage. */
export function registerRecordRoutes(app: FastifyInstance, deps: { sources: () => Promise<Sources>; policy: PolicyService; staff: StaffServices }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  const tags = ['transparency'];
  const security = [{ apiKey: [] }];
  const errors = { 401: errorBody, 403: errorBody };
  async function allowed(request: FastifyRequest): Promise<void> {
    const actor = actorOf(request);
    if (actor.kind === 'staff') {
      const memberId = staffMemberId(actor.ref);
      if (memberId === undefined) fail(ApiKeyErrors.APIKEY_MISSING, 'sign in as staff or send an API key');
      await deps.staff.directory.authorizeMember({ memberId: memberId! }, 'privacy.manage');
      return;
    }
    deps.policy.checkPurpose(actor, 'account');
  }
  r.get('/v1/ropa', {
    schema: { tags, summary: 'Record of processing activities (GDPR Art. 30(1)(a)-(g)), JSON or CSV', security, querystring: z.object({ format: z.enum(['json', 'csv']).default('json') }), response: { 200: z.union([z.object({ data: z.array(ropaRow) }), z.string()]), ...errors } },
    handler: async (request, reply) => {
      await allowed(request);
      const rows = ropa(await deps.sources());
      if (request.query.format === 'csv') return reply.type('text/csv; charset=utf-8').send(ropaCsv(rows));
      return { data: rows };
    },
  });
  r.get('/v1/data-map', {
    schema: { tags, summary: 'Collections, fields, categories, purposes, legal bases, retention, protection, processors', security, response: { 200: mapSchema, ...errors } },
    handler: async (request) => {
      await allowed(request);
      return dataMap(await deps.sources());
    },
  });
}
