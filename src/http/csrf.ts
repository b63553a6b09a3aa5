import type { FastifyRequest } from 'fastify';
import { fail } from '../kernel/errors.ts';
import { SessionErrors } from '../modules/identity/sessions/session-errors.ts';

/**
 * Cross-site request forgery defence for cookie sessions, without tokens in forms: a
 * state-changing request must show where it comes from, and that must be this service (its own
 * origin, or CUSTOS_PUBLIC_URL's). Browsers send `Origin` on every cross-origin request and on
 * same-origin POST/PUT/PATCH/DELETE, and `Sec-Fetch-Site` everywhere they implement Fetch
 * Metadata; scripts on another site can forge neither (OWASP CSRF Prevention Cheat Sheet,
 * "Verifying origin with standard headers" and "Fetch Metadata"; ASVS 3.5.1). The `SameSite`
 * cookie attribute is the second layer.
 *
 * A request that carries its session as `Authorization: Bearer` needs no check: a browser never
 * attaches that header by itself, so a forged request cannot carry it.
 */
export type OriginVerdict = 'same' | 'cross' | 'unknown';

const SAFE = new Set(['GET', 'HEAD', 'OPTIONS']);

export function isUnsafeMethod(method: string): boolean {
  return !SAFE.has(method.toUpperCase());
}

/** scheme://host[:port] of this request as the browser sees it (X-Forwarded-* only from a trusted proxy). */
export function ownOrigin(request: FastifyRequest): string | undefined {
  try {
    return new URL(`${request.protocol}://${request.host}`).origin;
  } catch {
    return undefined;
  }
}

/** Where a request comes from, judged by Origin first and Sec-Fetch-Site second. */
export function originVerdict(request: FastifyRequest, publicOrigin: string | undefined): OriginVerdict {
  const origin = request.headers.origin;
  if (typeof origin === 'string' && origin !== '') {
    if (origin === 'null') return 'cross';
    let normalised: string;
    try {
      normalised = new URL(origin).origin;
    } catch {
      return 'cross';
    }
    return normalised === publicOrigin || normalised === ownOrigin(request) ? 'same' : 'cross';
  }
  const site = request.headers['sec-fetch-site'];
  if (typeof site === 'string' && site !== '') return site === 'same-origin' || site === 'none' ? 'same' : 'cross';
  return 'unknown';
}

/**
 * Refuses a state-changing request from another origin (IDENTITY_CSRF_REJECTED, 403). With
 * `requireEvidence` (the request is authenticated by a cookie) a request that names no origin at
 * all is refused too; without it (sign-in, sign-up: no cookie yet) only a cross-origin one is,
 * which still stops login CSRF from browsers while letting non-browser clients in.
 */
export function checkOrigin(request: FastifyRequest, options: { publicOrigin: string | undefined; requireEvidence: boolean }): void {
  if (!isUnsafeMethod(request.method)) return;
  const verdict = originVerdict(request, options.publicOrigin);
  if (verdict === 'same') return;
  if (verdict === 'unknown' && !options.requireEvidence) return;
  fail(SessionErrors.IDENTITY_CSRF_REJECTED, 'cross-origin request refused: Origin or Sec-Fetch-Site must name this service');
}
