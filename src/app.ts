import { randomUUID } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import helmet from 'helmet';
import rateLimit from '@fastify/rate-limit';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import Fastify, { LogController, type FastifyInstance } from 'fastify';
import { jsonSchemaTransform, jsonSchemaTransformObject, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { Redis } from 'ioredis';
import type { TlsMaterial } from './http/tls.ts';
import { TLS_OPTIONS } from './http/tls.ts';
import { rateLimitKey, requireApiKey } from './http/auth.ts';
import { registerErrorHandling, send } from './http/error-handler.ts';
import { HttpErrors } from './http/errors.ts';
import { registerIdempotency } from './http/idempotency.ts';
import { parseJsonBody } from './http/json-body.ts';
import { lazyRequestLogger } from './http/request-logger.ts';
import { registerWebPages } from './http/web-pages.ts';
import { completeOpenApi, SECURITY_SCHEMES } from './http/openapi.ts';
import { registerVaultRoutes } from './modules/vault/routes.ts';
import { registerCardRoutes } from './modules/cards/routes.ts';
import { createRelay } from './modules/cards/relay.ts';
import { registerCardStaffRoutes } from './modules/cards/routes-staff.ts';
import { registerCardSessionRoutes } from './modules/cards/routes-sessions.ts';
import { registerCollectRoutes } from './modules/cards/routes-collect.ts';
import { loadCollectPage } from './modules/cards/collect-page.ts';
import { createCollectMonitor } from './modules/cards/collect-monitor.ts';
import { registerIncidentRoutes } from './modules/incidents/routes.ts';
import { registerIdentityRoutes, staffScope, staffVaultActor } from './modules/identity/routes/routes.ts';
import { registerInvitationRoute } from './modules/identity/routes/routes-claim.ts';
import { registerStaffRoutes } from './modules/staff/routes.ts';
import { registerConsentApiRoutes, registerConsentPublicRoutes } from './modules/consent/routes.ts';
import { registerConsentMeRoutes } from './modules/consent/routes-me.ts';
import { audiencePages } from './modules/consent/audience.ts';
import { registerObjectionDecisionRoutes } from './modules/consent/routes-staff.ts';
import { registerConsentLinkRoutes } from './modules/consent/routes-links.ts';
import { registerProcessorRoutes } from './modules/processors/routes.ts';
import { sourcesOf } from './modules/transparency/notice.ts';
import { registerNoticeRoutes, registerRecordRoutes } from './modules/transparency/routes.ts';
import { resolveSessions } from './http/session.ts';
import { customerActor } from './modules/identity/sessions/session-guard.ts';
import { registerAuditConsistencyRoute, registerAuditKeyRoute } from './modules/audit/routes.ts';
import { registerMeRightsRoutes, registerRightsRoutes } from './modules/rights/routes.ts';
import { registerSecurityAlertRoutes } from './modules/detection/routes.ts';
import { receiptJwks } from './modules/rights/receipt.ts';
import { registerPostureRoutes } from './modules/posture/routes.ts';
import { createPostureService } from './modules/posture/service.ts';
import { registerExportDownloadRoute } from './modules/rights/routes-export.ts';
import { registerRestrictionRoutes } from './modules/rights/routes-restriction.ts';
import { registerShopErasureRoutes, registerShopifyWebhookRoute } from './modules/rights/routes-shopify.ts';
import type { Runtime } from './runtime.ts';

/** The headers a header-setting middleware (helmet) sets, recorded once. */
function recordHeaders(middleware: (req: IncomingMessage, res: ServerResponse, next: (error?: unknown) => void) => void): Record<string, string> {
  const headers: Record<string, string> = {};
  const recorder = {
    setHeader: (name: string, value: string | number | readonly string[]) => void (headers[name.toLowerCase()] = String(value)),
    removeHeader: () => undefined,
    getHeader: () => undefined,
  };
  middleware({ headers: {} } as IncomingMessage, recorder as unknown as ServerResponse, (error) => {
    if (error !== undefined) throw error as Error;
  });
  return Object.freeze(headers);
}

export interface AppOptions {
  /** TLS material; undefined serves plain HTTP (tests with inject, or behind a trusted proxy). */
  readonly tls?: TlsMaterial | undefined;
  /** The folder of the card-collection page (tests of its change detection); default web/cards/. */
  readonly collectPageRoot?: URL | undefined;
}

/**
 * Builds the Fastify instance over a runtime; never listens (Fastify: app vs server). Security
 * headers on every response (HSTS ≥ 1 year with includeSubDomains, CSP with frame-ancestors
 * 'none', nosniff, no-referrer: ASVS 3.4.1, 3.4.3, 3.4.6), `Cache-Control: no-store` on the API
 * (ASVS 14.3.2), bounded bodies, per-key rate limits (keyed by the verified key, never by a key
 * id read before verification), a per-address budget of failed authentications, and no request
 * logging beyond route, status and timing.
 */
export async function buildApp(runtime: Runtime, options: AppOptions = {}): Promise<FastifyInstance> {
  const { config } = runtime;
  const app = Fastify({
    loggerInstance: runtime.logger,
    logController: new LogController({ disableRequestLogging: true }),
    childLoggerFactory: lazyRequestLogger,
    genReqId: () => randomUUID(),
    requestIdHeader: false,
    bodyLimit: config.bodyLimit,
    connectionTimeout: 30_000,
    requestTimeout: 30_000,
    keepAliveTimeout: 10_000,
    trustProxy: config.trustProxy ?? false,
    // Path parameters are validated by each route's schema; one-click unsubscribe and opt-in link
    // tokens (RFC 8058) are the longest, up to 1,100 characters.
    routerOptions: { ignoreTrailingSlash: true, maxParamLength: 1100 },
    // Fastify's own refusals (bad URL encoding, over-long path parameters) in our error shape,
    // without quoting the path, which may carry personal data.
    frameworkErrors: (error, request, reply) => {
      void send(reply, request, error.statusCode === 414 ? { ...HttpErrors.REQUEST_INVALID, status: 414 } : HttpErrors.REQUEST_INVALID, 'the request URL is malformed');
    },
    ...(options.tls === undefined ? {} : { https: { ...TLS_OPTIONS, cert: options.tls.cert, key: options.tls.key } }),
  }) as unknown as FastifyInstance;
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandling(app);
  // JSON only: text/plain (which Fastify parses by default) is refused with 415 like form bodies.
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    try {
      done(null, parseJsonBody(body as string));
    } catch (error) {
      done(error as Error, undefined);
    }
  });

  // Helmet's middleware, run once against a recorder: the headers are the same for every response,
  // so each request gets the recorded list instead of the middleware.
  const securityHeaders = recordHeaders(
    helmet({
      contentSecurityPolicy: {
        useDefaults: false,
        directives: {
          defaultSrc: ["'none'"],
          frameAncestors: ["'none'"],
          baseUri: ["'none'"],
          formAction: ["'none'"],
        },
      },
      hsts: { maxAge: 31_536_000, includeSubDomains: true },
      referrerPolicy: { policy: 'no-referrer' },
      frameguard: { action: 'deny' },
      crossOriginResourcePolicy: { policy: 'same-origin' },
    }),
  );
  const apiHeaders = { ...securityHeaders, 'cache-control': 'no-store' };
  const { detection } = runtime;
  const security = { events: runtime.events, now: () => runtime.clock.now() };
  app.addHook('onRequest', (request, reply, done) => {
    reply.headers(request.url.startsWith('/v1/') ? apiHeaders : securityHeaders);
    reply.header('x-request-id', request.id);
    // Detection: the client address of the request's audit entries (never logged), and sources
    // a rule blocked, refused before anything else (a map lookup; none while nothing is blocked).
    const ip = request.ip;
    if (detection.enabled) detection.requests.begin(request.id, ip);
    try {
      detection.blocks.check(ip);
    } catch (error) {
      done(error as Error);
      return;
    }
    done();
  });
  if (detection.enabled) {
    app.addHook('onResponse', (request, _reply, done) => {
      detection.requests.end(request.id);
      done();
    });
    app.addHook('onRequestAbort', (request, done) => {
      detection.requests.end(request.id);
      done();
    });
  }
  // Global Privacy Control (CCPA regs §7025): `Sec-GPC: 1` on a request that carries a customer
  // session withdraws that customer's sale/sharing consents, once. Any other value is no signal.
  // A callback hook, not an async one: a request without the signal (nearly all) costs no promise.
  app.addHook('preHandler', (request, _reply, done) => {
    const auth = request.headers['sec-gpc'] === '1' ? (request.authSession ?? null) : null;
    if (auth === null || auth.session.realm !== 'customer') return done();
    void (async () => {
      const account = await runtime.identity.accounts.get(auth.session.accountId);
      if (account.customer_id === null) return;
      await runtime.consent.honorGpc({ actor: customerActor(account.customer_id), requestId: request.id }, account.customer_id);
    })().then(() => done(), done);
  });
  // Route, status and timing at level info; with a quieter level the hook is not registered at all.
  if (runtime.logger.isLevelEnabled('info'))
    app.addHook('onResponse', (request, reply, done) => {
      request.log.info(
        { method: request.method, route: request.routeOptions.url ?? 'unmatched', status: reply.statusCode, ms: Math.round(reply.elapsedTime) },
        'request',
      );
      done();
    });

  const listenHost = config.host.includes(':') ? `[${config.host}]` : config.host;
  const serverUrl = config.publicUrl ?? `${config.tls.mode === 'off' ? 'http' : 'https'}://${listenHost}:${config.port}`;
  await app.register(swagger, {
    openapi: {
      openapi: '3.1.0',
      info: {
        title: 'Custos API',
        version: '1',
        license: { name: 'Apache-2.0', identifier: 'Apache-2.0' },
        description:
          'Customer data vault for online shops: stored encrypted, refused when undeclared, released per purpose, audited. ' +
          'Shop backends call the vault with an API key; customers use their own session under /v1/auth and /v1/me; staff use a staff session under /v1/staff. ' +
          'Every read states its purpose in the `Custos-Purpose` header. Every error answers `{ "error": { "code", "message", "request_id" } }` with a stable code.',
      },
      components: { securitySchemes: SECURITY_SCHEMES },
    },
    transform: jsonSchemaTransform,
    // The zod transform first, then the parts no single route knows (security per scope, codes, ids).
    transformObject: (documentObject) => completeOpenApi(jsonSchemaTransformObject(documentObject) as Record<string, unknown>, serverUrl),
  });
  await app.register(swaggerUi, {
    routePrefix: '/docs',
    staticCSP: true,
    transformStaticCSP: (header) => header.replace(/frame-ancestors [^;]*/, "frame-ancestors 'none'"),
    transformSpecification: (spec) => spec,
    uiConfig: { url: '/v1/openapi.json', validatorUrl: null } as Record<string, unknown>,
  });
  app.get('/v1/openapi.json', { schema: { hide: true } }, async () => app.swagger());
  app.get('/health', { schema: { hide: true } }, async () => ({ status: 'ok' }));
  // The pages the mails link to, in a scope of their own.
  await app.register(async (web) => registerWebPages(web));

  registerIdempotency(app, { store: runtime.idempotency, logger: runtime.logger });
  registerAuditKeyRoute(app, { keys: runtime.rootKeys });

  const redis = config.redisUrl === undefined ? undefined : new Redis(config.redisUrl.reveal(), { lazyConnect: false, maxRetriesPerRequest: 1 });
  if (redis !== undefined) app.addHook('onClose', async () => void redis.quit());

  await app.register(async (api) => {
    await api.register(rateLimit, {
      max: config.rateLimitPerMinute,
      timeWindow: 60_000,
      // The limiter's hooks are route-level, so they run after the authentication hook below.
      keyGenerator: rateLimitKey,
      ...(redis === undefined ? {} : { redis, nameSpace: 'custos-rl-' }),
    });
    requireApiKey(api, runtime.apiKeys, staffVaultActor(runtime), runtime.identity.authFailures, detection.enabled ? security : undefined);
    registerVaultRoutes(api, {
      vault: runtime.vault,
      inventory: runtime.inventory,
      schemaOptions: { phoneDefaultCountry: config.phoneDefaultCountry, now: () => runtime.clock.now() },
    });
    const relay = createRelay({ cards: runtime.cards, allowlist: config.relay.allowlist, caFile: config.relay.caFile, security: detection.enabled ? security : undefined });
    api.addHook('onClose', async () => relay.close());
    registerCardRoutes(api, {
      cards: runtime.cards,
      relay,
      inventory: runtime.inventory,
      schemaOptions: { phoneDefaultCountry: config.phoneDefaultCountry, now: () => runtime.clock.now() },
    });
    registerCardSessionRoutes(api, { sessions: runtime.cardSessions, publicUrl: config.publicUrl });
    registerInvitationRoute(api, { identity: runtime.identity, vault: runtime.vault, audit: runtime.audit });
    registerAuditConsistencyRoute(api, { db: runtime.store.db });
    registerSecurityAlertRoutes(api, { detection, directory: runtime.staff.directory });
    registerConsentApiRoutes(api, { consent: runtime.consent, audience: (ctx, request) => audiencePages({ vault: runtime.vault, consent: runtime.consent }, ctx, request) });
    registerRecordRoutes(api, { sources: () => sourcesOf(runtime), policy: runtime.policy, staff: runtime.staff });
    registerRightsRoutes(api, {
      rights: runtime.rights,
      erasure: runtime.erasure,
      exports: runtime.exports,
      restrictions: runtime.restrictions,
      vaultErasure: runtime.vaultErasure,
      directory: runtime.staff.directory,
      receiptKeys: () => receiptJwks([runtime.rootKeys.receiptSigning, ...runtime.rootKeys.receiptSigningPrevious]),
      notices: runtime.processorNotices,
    });
    registerRestrictionRoutes(api, { restrictions: runtime.restrictions, directory: runtime.staff.directory });
    registerShopErasureRoutes(api, { shopErasures: runtime.shopErasures, webhooks: runtime.shopify, directory: runtime.staff.directory });
  });
  // Consent: the customer's own (customer session), and the public receipt keys and GPC resource.
  await app.register(async (me) => {
    await me.register(rateLimit, { max: config.rateLimitPerMinute, timeWindow: 60_000, ...(redis === undefined ? {} : { redis, nameSpace: 'custos-rl-consent-' }) });
    resolveSessions(me, { sessions: runtime.identity.sessions, realm: 'customer', publicOrigin: config.publicUrl });
    registerConsentMeRoutes(me, { consent: runtime.consent, identity: runtime.identity, vault: runtime.vault });
  });
  await app.register(async (pub) => {
    await pub.register(rateLimit, { max: config.rateLimitPerMinute, timeWindow: 60_000, ...(redis === undefined ? {} : { redis, nameSpace: 'custos-rl-public-' }) });
    registerConsentLinkRoutes(pub, { consent: runtime.consent, inventory: runtime.inventory });
    registerNoticeRoutes(pub, { sources: () => sourcesOf(runtime), version: () => runtime.consent.notices.current() });
    registerExportDownloadRoute(pub, { exports: runtime.exports });
    registerConsentPublicRoutes(pub, { consent: runtime.consent, gpcUpdated: async () => ((await runtime.consent.notices.publishedAt(runtime.consent.notices.current())) ?? '').slice(0, 10) });
  });
  // The card fields a checkout embeds, and their one call with a publishable key; checked against
  // their release manifest and the page as last served (PCI DSS 11.6.1).
  const collectPage = loadCollectPage({ root: options.collectPageRoot, storefrontOrigins: config.storefrontOrigins, baseHeaders: securityHeaders });
  const collectMonitor = createCollectMonitor({ page: collectPage, db: runtime.store.db, audit: runtime.audit, clock: runtime.clock, logger: runtime.logger });
  app.addHook('onReady', async () => void (await collectMonitor.start()));
  app.addHook('onClose', async () => collectMonitor.close());
  await app.register(async (collect) => {
    await collect.register(rateLimit, { max: config.rateLimitPerMinute, timeWindow: 60_000, ...(redis === undefined ? {} : { redis, nameSpace: 'custos-rl-collect-' }) });
    registerCollectRoutes(collect, {
      sessions: runtime.cardSessions,
      page: collectPage,
      storefrontOrigins: config.storefrontOrigins,
      publicUrl: config.publicUrl,
      failures: runtime.identity.authFailures,
      inventory: runtime.inventory,
      schemaOptions: { phoneDefaultCountry: config.phoneDefaultCountry, now: () => runtime.clock.now() },
    });
  });
  // Shopify's compliance webhooks: signed by the app secret over the raw body, which this scope keeps.
  await app.register(async (shopify) => {
    await shopify.register(rateLimit, { max: config.rateLimitPerMinute, timeWindow: 60_000, ...(redis === undefined ? {} : { redis, nameSpace: 'custos-rl-shopify-' }) });
    registerShopifyWebhookRoute(shopify, { webhooks: runtime.shopify });
  });
  // Sign-in (customers, staff), the customer's own data, and the staff API behind staff sessions.
  await registerIdentityRoutes(app, runtime, redis, (customers) =>
    registerMeRightsRoutes(customers, { rights: runtime.rights, erasure: runtime.erasure, exports: runtime.exports, restrictions: runtime.restrictions, accounts: runtime.identity.accounts, vault: runtime.vault }),
  );
  await app.register(staffScope(runtime, redis, (staffApi) => registerStaffRoutes(staffApi, { staff: runtime.staff })));
  const posture = createPostureService({
    runtime,
    onError: (check, error) => runtime.logger.warn({ check, code: (error as { code?: unknown }).code, err: error }, 'a posture check could not run'),
  });
  await app.register(
    staffScope(runtime, redis, (staffApi) => {
      registerPostureRoutes(staffApi, { posture, staff: runtime.staff, audit: runtime.audit });
      registerProcessorRoutes(staffApi, { processors: runtime.processors, staff: runtime.staff });
      registerObjectionDecisionRoutes(staffApi, { consent: runtime.consent, staff: runtime.staff });
      registerCardStaffRoutes(staffApi, { cards: runtime.cards, staff: runtime.staff, sessions: runtime.identity.sessions });
      registerIncidentRoutes(staffApi, { incidents: runtime.incidents });
    }),
  );
  return app;
}
