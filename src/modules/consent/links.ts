import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';
import { fail } from '../../kernel/errors.ts';
import { ConsentErrors } from './errors.ts';

/**
 * Signed, expiring links that act without a sign-in: one-click unsubscribe (RFC 8058) per customer
 * and purpose, and the confirmation of a double opt-in grant. A token is its claims (base64url
 * JSON) and an HMAC-SHA256 over them under the consent links key; nothing is stored per link.
 */
export type LinkKind = 'unsubscribe' | 'confirm';

export interface LinkClaims {
  readonly kind: LinkKind;
  readonly subjectId: string;
  readonly purpose: string;
  /** For a confirmation: the pending ledger row it confirms. */
  readonly row?: string | undefined;
  /** Expiry, seconds since the epoch. */
  readonly exp: number;
}

/** Unsubscribe links stay valid at least 60 days (they sit in old mails); these last 90. */
export const UNSUBSCRIBE_TTL_S = 90 * 24 * 3600;
export const CONFIRM_TTL_S = 7 * 24 * 3600;

const mac = (key: KeyObject, body: string) => createHmac('sha256', key).update(`custos/consent-link/v1\u0000${body}`).digest('base64url');

export function signLink(key: KeyObject, claims: LinkClaims): string {
  const body = Buffer.from(JSON.stringify({ k: claims.kind, s: claims.subjectId, p: claims.purpose, r: claims.row ?? null, e: claims.exp })).toString('base64url');
  return `${body}.${mac(key, body)}`;
}

/** The claims of a link of `kind` that is intact and not expired; CONSENT_LINK_INVALID / _EXPIRED otherwise. */
export function openLink(key: KeyObject, kind: LinkKind, token: string, nowS: number): LinkClaims {
  const invalid = (): never => fail(ConsentErrors.CONSENT_LINK_INVALID, 'the link is not one Custos made');
  const m = /^([A-Za-z0-9_-]{1,1000})\.([A-Za-z0-9_-]{43})$/.exec(token);
  if (m === null) return invalid();
  const [, body, sig] = m as unknown as [string, string, string];
  const want = Buffer.from(mac(key, body));
  if (!timingSafeEqual(want, Buffer.from(sig))) invalid();
  const c = JSON.parse(Buffer.from(body, 'base64url').toString('utf8')) as { k: LinkKind; s: string; p: string; r: string | null; e: number };
  if (c.k !== kind) invalid();
  if (c.e < nowS) fail(ConsentErrors.CONSENT_LINK_EXPIRED, 'the link has expired');
  return { kind: c.k, subjectId: c.s, purpose: c.p, row: c.r ?? undefined, exp: c.e };
}
