import { readFileSync } from 'node:fs';
import type { FastifyInstance } from 'fastify';

/**
 * The pages the mails link to (web/ at the repository root): confirm an email address, choose a
 * new password (customers and staff), claim an account the shop stored, accept a staff
 * invitation, download a data export. Each is static HTML with one same-origin script and
 * stylesheet, read once at start
 * and served from memory. Their Content-Security-Policy lets in only this origin's script, style
 * and API calls — no inline script, no frames, no form posts (the script sends JSON through
 * fetch) (ASVS 3.4.3, 3.4.6).
 */
export const WEB_ROOT = new URL('../../web/', import.meta.url);

export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const PAGES: Record<string, string> = {
  '/account/verify-email': 'account/verify-email.html',
  '/account/reset-password': 'account/reset-password.html',
  '/admin/reset-password': 'account/reset-password.html',
  '/account/claim': 'account/claim.html',
  '/account/export': 'account/export.html',
  '/admin/accept-invitation': 'admin/accept-invitation.html',
};
const ASSETS: Record<string, { file: string; type: string }> = {
  '/assets/pages.js': { file: 'assets/pages.js', type: 'text/javascript; charset=utf-8' },
  '/assets/pages.css': { file: 'assets/pages.css', type: 'text/css; charset=utf-8' },
};

const read = (file: string) => readFileSync(new URL(file, WEB_ROOT));

export function registerWebPages(app: FastifyInstance): void {
  for (const [path, file] of Object.entries(PAGES)) {
    const html = read(file);
    app.get(path, { schema: { hide: true } }, async (_request, reply) =>
      reply.header('content-security-policy', PAGE_CSP).header('cache-control', 'no-cache').type('text/html; charset=utf-8').send(html),
    );
  }
  for (const [path, asset] of Object.entries(ASSETS)) {
    const body = read(asset.file);
    app.get(path, { schema: { hide: true } }, async (_request, reply) => reply.header('cache-control', 'no-cache').type(asset.type).send(body));
  }
}
