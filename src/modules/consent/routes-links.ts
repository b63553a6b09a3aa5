import type { FastifyInstance, FastifyReply } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { errorBody } from './routes.ts';
import type { Inventory } from '../inventory/index.ts';
import type { ConsentService } from './service.ts';

/**
 * Links followed without signing in: one-click unsubscribe (RFC 8058: the POST carries
 * `List-Unsubscribe=One-Click` as a form, with no cookie and no Origin, and is answered without a
 * redirect) and the confirmation of a double opt-in grant. GET only shows a page with a button;
 * only POST changes anything, so mail scanners that fetch links change nothing.
 */
// A wildcard, not a :token parameter: tokens are longer than the router's limit for parameters.
const tokenParam = z.object({ token: z.string().min(1).max(1100).meta({ description: 'The token of the link.' }) });
const html = z.string().meta({ description: 'An HTML page.' });

const escape = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

function page(reply: FastifyReply, title: string, body: string): FastifyReply {
  // The page's own form posts back here; everything else stays as strict as the rest of Custos.
  reply.header('content-security-policy', "default-src 'none'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'");
  reply.header('cache-control', 'no-store');
  reply.type('text/html; charset=utf-8');
  return reply.send(`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>${escape(title)}</title></head><body><main><h1>${escape(title)}</h1>${body}</main></body></html>`);
}

export function registerConsentLinkRoutes(app: FastifyInstance, deps: { consent: ConsentService; inventory: Inventory }): void {
  // Form bodies are accepted and not read: the link itself says what to do.
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'buffer' }, (_request, _body, done) => done(null, {}));
  app.addContentTypeParser('multipart/form-data', { parseAs: 'buffer' }, (_request, _body, done) => done(null, {}));
  const r = app.withTypeProvider<ZodTypeProvider>();
  const tags = ['consents'];
  const describe = (purpose: string) => escape(deps.inventory.purposes.get(purpose)?.description ?? purpose);
  const responses = { 200: html, 400: errorBody, 410: errorBody };

  r.get('/v1/unsubscribe/:token', {
    schema: { tags, summary: 'Confirmation page of a one-click unsubscribe link', params: tokenParam, response: responses },
    handler: async (request, reply) => {
      const { purpose } = deps.consent.checkUnsubscribe(request.params.token);
      return page(reply, 'Unsubscribe', `<p>Stop: ${describe(purpose)}</p><form method="post"><input type="hidden" name="List-Unsubscribe" value="One-Click"><button type="submit">Unsubscribe</button></form>`);
    },
  });

  r.post('/v1/unsubscribe/:token', {
    schema: { tags, summary: 'One-click unsubscribe (RFC 8058): withdraws the consent', params: tokenParam, response: responses },
    handler: async (request, reply) => {
      const { purpose } = await deps.consent.unsubscribe(request.params.token, request.id);
      return page(reply, 'Unsubscribed', `<p>Done. Withdrawn: ${describe(purpose)}</p>`);
    },
  });

  r.get('/v1/consents/confirm/:token', {
    schema: { tags, summary: 'Confirmation page of a double opt-in link', params: tokenParam, response: responses },
    handler: async (_request, reply) => page(reply, 'Confirm', '<form method="post"><button type="submit">Yes, I agree</button></form>'),
  });

  r.post('/v1/consents/confirm/:token', {
    schema: { tags, summary: 'Confirms a pending double opt-in grant', params: tokenParam, response: responses },
    handler: async (request, reply) => {
      const { purpose } = await deps.consent.confirm(request.params.token, request.id);
      return page(reply, 'Confirmed', `<p>Thank you. Granted: ${describe(purpose)}</p>`);
    },
  });
}
