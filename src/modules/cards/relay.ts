import { lookup } from 'node:dns/promises';
import { readFileSync } from 'node:fs';
import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { Agent as HttpAgent } from 'node:http';
import { BlockList, isIP } from 'node:net';
import { rootCertificates } from 'node:tls';
import { AppError, fail } from '../../kernel/errors.ts';
import { sourceOf, type SecurityEvents } from '../../kernel/security-events.ts';
import { looksLikePan, maskPan } from './card-rules.ts';
import { CardErrors } from './errors.ts';
import type { CardCallContext, CardSecret, CardService } from './service.ts';

/**
 * The relay (detokenising proxy): forwards a shop's request to an allow-listed payment processor
 * origin, with `{{ <token>.pan }}` placeholders (also .cvv, .exp_month, .exp_year,
 * .cardholder_name) replaced by the card data, escaped for the body's content type, and passes the
 * answer back with any card number in it replaced by its token (known cards) or masked to BIN +
 * last four (others; PCI DSS 3.4.1). Not an open proxy: allow-listed origins only, HTTPS outside
 * loopback, no redirects followed, bounded bodies, a timeout, no private-address target unless the
 * allow-list names that address, response headers filtered. A waiting CVV is dropped at the first
 * response (PCI DSS 3.3.1).
 */
export const RELAY_REQUEST_LIMIT = 64 * 1024;
export const RELAY_RESPONSE_LIMIT = 1024 * 1024;
export const RELAY_TIMEOUT_MS = 10_000;
/** How long a checked DNS answer for an allow-listed host serves further calls. */
export const RESOLVE_REUSE_MS = 30_000;

export const PLACEHOLDER = /\{\{\s*(tok_[0-9A-HJKMNP-TV-Z]{26}|\d{12,19})\.(pan|cvv|exp_month|exp_year|cardholder_name)\s*\}\}/g;
type Part = 'pan' | 'cvv' | 'exp_month' | 'exp_year' | 'cardholder_name';

/** Request headers the caller may not set: the relay's own transport decides them. */
const FORBIDDEN_REQUEST_HEADERS = new Set(['host', 'content-length', 'transfer-encoding', 'connection', 'keep-alive', 'upgrade', 'te', 'trailer', 'proxy-authorization', 'proxy-connection', 'expect']);
/** Response headers passed back; every other header (cookies, locations, custom ones that could carry card data) is dropped. */
const PASSED_RESPONSE_HEADERS = ['content-type', 'retry-after'];

export interface RelayRequest {
  readonly url: string;
  readonly method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  readonly headers?: Record<string, string> | undefined;
  readonly body?: unknown;
}

export interface RelayResponse {
  status: number;
  headers: Record<string, string>;
  body: string;
}

export interface Relay {
  forward(ctx: CardCallContext, req: RelayRequest): Promise<RelayResponse>;
  close(): void;
}

const PRIVATE = new BlockList();
for (const [net, prefix] of [
  ['0.0.0.0', 8],
  ['10.0.0.0', 8],
  ['100.64.0.0', 10],
  ['127.0.0.0', 8],
  ['169.254.0.0', 16],
  ['172.16.0.0', 12],
  ['192.168.0.0', 16],
  ['198.18.0.0', 15],
  ['224.0.0.0', 4],
  ['240.0.0.0', 4],
] as const)
  PRIVATE.addSubnet(net, prefix, 'ipv4');
for (const [net, prefix] of [
  ['::', 128],
  ['::1', 128],
  ['fc00::', 7],
  ['fe80::', 10],
  ['ff00::', 8],
] as const)
  PRIVATE.addSubnet(net, prefix, 'ipv6');

export function isPrivateAddress(input: string): boolean {
  // An IPv4-mapped IPv6 address is checked as the IPv4 address it names.
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(input);
  const address = mapped === null ? input : mapped[1]!;
  const family = isIP(address);
  return family !== 0 && PRIVATE.check(address, family === 4 ? 'ipv4' : 'ipv6');
}

/** A value placed into a JSON string (without the quotes), a form field, or a header. */
function escapeFor(kind: 'json' | 'form' | 'header', value: string): string {
  if (kind === 'json') return JSON.stringify(value).slice(1, -1);
  if (kind === 'form') return new URLSearchParams({ v: value }).toString().slice(2);
  if (/[\r\n\0]/.test(value)) fail(CardErrors.CARDS_RELAY_INVALID, 'a card value cannot be placed in a header');
  return value;
}

function partOf(secret: CardSecret & { cvv?: string }, part: Part): string {
  if (part === 'exp_month') return String(secret.exp_month).padStart(2, '0');
  if (part === 'exp_year') return String(secret.exp_year);
  if (part === 'cardholder_name') return secret.cardholder_name ?? '';
  if (part === 'cvv') return secret.cvv ?? '';
  return secret.pan;
}

function collect(text: string, into: Map<string, Set<string>>): void {
  for (const m of text.matchAll(PLACEHOLDER)) {
    const set = into.get(m[1]!) ?? new Set<string>();
    set.add(m[2]!);
    into.set(m[1]!, set);
  }
}

function substitute(text: string, secrets: Map<string, CardSecret & { cvv?: string }>, kind: 'json' | 'form' | 'header'): string {
  return text.replace(PLACEHOLDER, (_m, token: string, part: Part) => escapeFor(kind, partOf(secrets.get(token)!, part)));
}

/** JSON strings with placeholders substituted, walking the value (so the serialiser escapes them). */
function substituteJson(value: unknown, secrets: Map<string, CardSecret & { cvv?: string }>): unknown {
  if (typeof value === 'string') return value.replace(PLACEHOLDER, (_m, token: string, part: Part) => partOf(secrets.get(token)!, part));
  if (Array.isArray(value)) return value.map((v) => substituteJson(v, secrets));
  if (value !== null && typeof value === 'object') return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, substituteJson(v, secrets)]));
  return value;
}

/**
 * Card numbers in a processor's answer: known ones become their tokens, others are masked. A CVV
 * sent in this call is replaced by `***` wherever it stands as a digit run of its own (an amount of
 * the same digits is replaced too: the CVV must not come back, PCI DSS 3.3.1).
 */
export function scrubCardNumbers(text: string, known: ReadonlyMap<string, string>, cvvs: readonly string[] = []): string {
  return text.replace(/\d+/g, (digits) => {
    if (cvvs.includes(digits)) return '***';
    if (digits.length < 12 || digits.length > 19) return digits;
    const token = known.get(digits);
    if (token !== undefined) return token;
    return looksLikePan(digits) ? maskPan(digits) : digits;
  });
}

/**
 * `security`: a call refused for its target (off the allow-list, or resolving to a private
 * address) is told to detection as `cards.relay_refused`, with the target's origin and the caller.
 */
export function createRelay(deps: {
  cards: CardService;
  allowlist: readonly string[];
  caFile: string | undefined;
  security?: { readonly events: SecurityEvents; readonly now: () => Date } | undefined;
}): Relay {
  const allowed = new Set(deps.allowlist);
  const ca = deps.caFile === undefined ? undefined : [...rootCertificates, readFileSync(deps.caFile, 'utf8')];
  // Keep-alive to the processor: one TCP and TLS handshake per pooled connection, not per call
  // (Node's agents also set TCP_NODELAY on their sockets: no Nagle delay).
  const httpsAgent = new HttpsAgent({ keepAlive: true, maxSockets: 64, ...(ca === undefined ? {} : { ca }) });
  const httpAgent = new HttpAgent({ keepAlive: true, maxSockets: 64 });
  /** Checked answers by host name, reused for RESOLVE_REUSE_MS (no DNS lookup per call). */
  const resolved = new Map<string, { address: string; family: number; until: number }>();

  /**
   * The address to connect to: checked, then pinned for the call, so a second DNS answer cannot
   * move it; a checked answer serves the calls of the next RESOLVE_REUSE_MS (the allow-list holds
   * a few origins, so the map stays small).
   */
  async function resolveTarget(url: URL): Promise<{ address: string; family: number }> {
    const host = url.hostname.replace(/^\[|\]$/g, '');
    if (isIP(host) !== 0) return { address: host, family: isIP(host) };
    const now = Date.now();
    const known = resolved.get(host);
    if (known !== undefined && now < known.until) return known;
    let answer: { address: string; family: number };
    try {
      answer = await lookup(host);
    } catch {
      fail(CardErrors.CARDS_RELAY_UPSTREAM_FAILED, 'the relay target could not be resolved');
    }
    // An allow-listed name resolving to a private address (DNS rebinding, a hijacked record) is
    // refused; `localhost` is allowed only as itself.
    if (isPrivateAddress(answer.address) && !(host === 'localhost' && (answer.address === '127.0.0.1' || answer.address === '::1')))
      fail(CardErrors.CARDS_RELAY_TARGET_NOT_ALLOWED, 'the relay target resolves to a private address');
    resolved.set(host, { address: answer.address, family: answer.family, until: now + RESOLVE_REUSE_MS });
    return answer;
  }

  function send(url: URL, target: { address: string; family: number }, method: string, headers: Record<string, string>, body: Buffer | undefined, onFirstResponse: () => void): Promise<RelayResponse & { raw: Buffer }> {
    return new Promise((resolve, reject) => {
      const secure = url.protocol === 'https:';
      const options = {
        method,
        headers: { ...headers, ...(body === undefined ? {} : { 'content-length': String(body.length) }) },
        agent: secure ? httpsAgent : httpAgent,
        timeout: RELAY_TIMEOUT_MS,
        lookup: (_h: string, o: { all?: boolean }, cb: (err: Error | null, address: string | { address: string; family: number }[], family?: number) => void) =>
          o.all === true ? cb(null, [target]) : cb(null, target.address, target.family),
        servername: isIP(url.hostname) === 0 ? url.hostname : undefined,
      };
      const req = (secure ? httpsRequest : httpRequest)(url, options, (res) => {
        onFirstResponse();
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > RELAY_RESPONSE_LIMIT) {
            res.destroy();
            reject(Object.assign(new Error('too large'), { relay: 'too_large' }));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 502, headers: pick(res.headers), body: '', raw: Buffer.concat(chunks) }));
        res.on('error', reject);
      });
      const deadline = setTimeout(() => req.destroy(new Error('timeout')), RELAY_TIMEOUT_MS);
      req.on('close', () => clearTimeout(deadline));
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', reject);
      req.end(body);
    });
  }

  /** Tells detection of a call refused for its target, then refuses it. */
  function refused(ctx: CardCallContext, url: URL | undefined, error: unknown): never {
    if (deps.security !== undefined && error instanceof AppError && error.code === CardErrors.CARDS_RELAY_TARGET_NOT_ALLOWED.code)
      deps.security.events.emit({
        at: deps.security.now(),
        action: 'cards.relay_refused',
        outcome: 'denied',
        actor: ctx.actor.ref,
        source: sourceOf(ctx.clientAddress),
        requestId: ctx.requestId,
        detail: { target: url === undefined ? 'unparseable' : url.origin.slice(0, 200) },
      });
    throw error;
  }

  /** The target URL: on the allow-list, without credentials. */
  function allowedUrl(ctx: CardCallContext, raw: string): URL {
    let url: URL | undefined;
    try {
      try {
        url = new URL(raw);
      } catch {
        fail(CardErrors.CARDS_RELAY_TARGET_NOT_ALLOWED, 'the relay URL is not on the allow-list');
      }
      if (!allowed.has(url.origin) || url.username !== '' || url.password !== '') fail(CardErrors.CARDS_RELAY_TARGET_NOT_ALLOWED, 'the relay URL is not on the allow-list');
      return url;
    } catch (error) {
      return refused(ctx, url, error);
    }
  }

  return {
    async forward(ctx, r) {
      const url = allowedUrl(ctx, r.url);
      const headers: Record<string, string> = {};
      for (const [name, value] of Object.entries(r.headers ?? {})) {
        const lower = name.toLowerCase();
        if (FORBIDDEN_REQUEST_HEADERS.has(lower)) fail(CardErrors.CARDS_RELAY_INVALID, `the relay sets ${lower} itself`);
        headers[lower] = value;
      }
      const contentType = (headers['content-type'] ?? (typeof r.body === 'string' || r.body === undefined ? '' : 'application/json')).toLowerCase();
      const kind = contentType.startsWith('application/json') || contentType.endsWith('+json') ? 'json' : contentType.startsWith('application/x-www-form-urlencoded') ? 'form' : undefined;
      const wanted = new Map<string, Set<string>>();
      for (const value of Object.values(headers)) collect(value, wanted);
      const bodyText = r.body === undefined ? undefined : typeof r.body === 'string' ? r.body : JSON.stringify(r.body);
      if (bodyText !== undefined) {
        const inBody = new Map<string, Set<string>>();
        collect(bodyText, inBody);
        if (inBody.size > 0 && kind === undefined) fail(CardErrors.CARDS_RELAY_INVALID, 'placeholders go in a JSON or form body (state its content-type)');
        for (const [t, parts] of inBody) wanted.set(t, new Set([...(wanted.get(t) ?? []), ...parts]));
      }
      if (bodyText !== undefined && Buffer.byteLength(bodyText) > RELAY_REQUEST_LIMIT) fail(CardErrors.CARDS_RELAY_BODY_TOO_LARGE, 'the relay body exceeds 64 KiB');
      const address = await resolveTarget(url).catch((error: unknown) => refused(ctx, url, error));
      const secrets = await deps.cards.relaySecrets(ctx, [...wanted.keys()], wanted);
      for (const [name, value] of Object.entries(headers)) headers[name] = substitute(value, secrets, 'header');
      let body: Buffer | undefined;
      if (r.body !== undefined) {
        const text =
          typeof r.body === 'string' ? (kind === undefined ? r.body : substitute(r.body, secrets, kind)) : JSON.stringify(substituteJson(r.body, secrets));
        if (headers['content-type'] === undefined && typeof r.body !== 'string') headers['content-type'] = 'application/json';
        body = Buffer.from(text, 'utf8');
        if (body.length > RELAY_REQUEST_LIMIT) fail(CardErrors.CARDS_RELAY_BODY_TOO_LARGE, 'the relay body exceeds 64 KiB');
      }
      let dropped: Promise<void> | undefined;
      const drop = () => void (dropped ??= deps.cards.dropCvvs([...wanted].filter(([, parts]) => parts.has('cvv')).map(([t]) => t)));
      let answer: RelayResponse & { raw: Buffer };
      try {
        answer = await send(url, address, r.method, headers, body, drop);
      } catch (error) {
        await dropped;
        if ((error as { relay?: string }).relay === 'too_large') fail(CardErrors.CARDS_RELAY_RESPONSE_TOO_LARGE, 'the processor answer exceeds 1 MiB');
        fail(CardErrors.CARDS_RELAY_UPSTREAM_FAILED, 'the processor could not be reached or did not answer in time');
      }
      await dropped;
      const known = new Map([...secrets].map(([token, s]) => [s.pan, token]));
      const cvvs = [...secrets.values()].flatMap((s) => (s.cvv === undefined ? [] : [s.cvv]));
      const out: Record<string, string> = {};
      for (const [name, value] of Object.entries(answer.headers)) out[name] = scrubCardNumbers(value, known, cvvs);
      return { status: answer.status, headers: out, body: scrubCardNumbers(answer.raw.toString('utf8'), known, cvvs) };
    },
    close() {
      httpsAgent.destroy();
      httpAgent.destroy();
    },
  };
}

function pick(headers: IncomingHttpHeaders): Record<string, string> {
  const out: Record<string, string> = {};
  for (const name of PASSED_RESPONSE_HEADERS) {
    const v = headers[name];
    if (typeof v === 'string') out[name] = v;
  }
  return out;
}
