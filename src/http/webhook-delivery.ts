import { readFileSync } from 'node:fs';
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import { isIP } from 'node:net';
import { rootCertificates } from 'node:tls';
import type { Clock } from '../kernel/clock.ts';
import { systemClock } from '../kernel/clock.ts';
import type { Logger } from '../kernel/logger.ts';
import { withRetries } from '../kernel/retry.ts';
import { newWebhookId, webhookHeaders } from './webhooks.ts';

/**
 * Sends signed webhooks (src/http/webhooks.ts) to one configured endpoint, as Standard Webhooks
 * 1.0.0 asks of a sender: a POST of `{ "type", "timestamp", "data" }` as JSON, HTTPS (plain HTTP
 * only to a loopback address), a timeout per attempt, redirects never followed (a 3xx is a
 * failure: the URL should be updated), 2xx is success, 410 Gone stops for good, 408/425/429/5xx
 * and network failures are retried with growing waits (and at least the Retry-After the endpoint
 * asked for), other 4xx are not retried. The same `webhook-id` goes with every retry, each attempt
 * gets its own `webhook-timestamp` and signature. Logs name the attempt, the status and the kind
 * of failure: never the URL (it may hold a token), the body or the secret.
 */
export const WEBHOOK_TIMEOUT_MS = 15_000;
/** After the first attempt: 5 s, 30 s, 2 min, 10 min, 30 min (the spec's example schedule, shortened: the queue lives in memory). */
export const WEBHOOK_RETRY_DELAYS_MS: readonly number[] = [5_000, 30_000, 120_000, 600_000, 1_800_000];
/** A Retry-After longer than this is cut to it. */
const MAX_RETRY_AFTER_MS = 30 * 60_000;
/** Deliveries waiting or in flight at once; beyond it a send is refused at once (WEBHOOK_BUSY). */
const MAX_PENDING = 1000;
/** Bytes of an answer read before the connection is dropped (the answer is not used). */
const MAX_ANSWER_BYTES = 64 * 1024;

export type WebhookFailure = 'WEBHOOK_REDIRECT' | 'WEBHOOK_GONE' | 'WEBHOOK_REFUSED' | 'WEBHOOK_UNAVAILABLE' | 'WEBHOOK_UNREACHABLE' | 'WEBHOOK_BUSY' | 'WEBHOOK_CLOSED';

export class WebhookDeliveryError extends Error {
  readonly code: WebhookFailure;
  readonly status: number | undefined;
  /** Retry-After of the answer, in ms. */
  readonly retryAfterMs: number | undefined;
  attempts = 0;
  constructor(code: WebhookFailure, message: string, status?: number, retryAfterMs?: number) {
    super(message);
    this.name = 'WebhookDeliveryError';
    this.code = code;
    this.status = status;
    this.retryAfterMs = retryAfterMs;
  }
}

const LOOPBACK_NAMES = new Set(['localhost', '::1', '[::1]']);

/** 127.0.0.0/8, ::1 and `localhost`: the only hosts plain HTTP may go to. */
export function isLoopbackHost(hostname: string): boolean {
  const host = hostname.toLowerCase();
  return LOOPBACK_NAMES.has(host) || (isIP(host) === 4 && host.startsWith('127.'));
}

/** Why `url` cannot be a webhook endpoint, or undefined when it can. */
export function webhookUrlProblem(url: string): string | undefined {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    return 'must be an absolute URL such as https://siem.shop.example/hooks/custos';
  }
  if (parsed.protocol !== 'https:' && parsed.protocol !== 'http:') return 'must be an https:// URL';
  if (parsed.protocol === 'http:' && !isLoopbackHost(parsed.hostname)) return 'must use https (plain http only to a loopback address)';
  if (parsed.username !== '' || parsed.password !== '') return 'must not hold a user name or password (the signature authenticates the sender)';
  if (parsed.hash !== '') return 'must not have a #fragment';
  return undefined;
}

export interface WebhookEndpoint {
  readonly url: string;
  /** Signing keys (parseWebhookSecret); every one signs, for a rotation without a gap. */
  readonly keys: readonly Buffer[];
  /** A PEM file of a CA trusted besides the system ones. */
  readonly caFile?: string | undefined;
}

export interface WebhookDeliveryOptions {
  readonly clock?: Clock | undefined;
  readonly logger?: Logger | undefined;
  /** What the log lines call this endpoint (`alerts`, `processor`). */
  readonly label?: string | undefined;
  readonly timeoutMs?: number | undefined;
  readonly retryDelaysMs?: readonly number[] | undefined;
}

export interface WebhookDelivery {
  /**
   * Sends one message (one `webhook-id`) until it is taken or given up; resolves with the attempts
   * used, throws WebhookDeliveryError once it gives up.
   */
  send(type: string, data: unknown, options?: { id?: string; timestamp?: Date }): Promise<{ id: string; attempts: number; status: number }>;
  /** Stops waiting retries (their sends fail with WEBHOOK_CLOSED) and closes connections. */
  close(): void;
}

function retryAfterOf(value: string | string[] | undefined, now: number): number | undefined {
  if (typeof value !== 'string') return undefined;
  const ms = /^\d+$/.test(value.trim()) ? Number(value.trim()) * 1000 : Date.parse(value) - now;
  return Number.isFinite(ms) && ms > 0 ? Math.min(ms, MAX_RETRY_AFTER_MS) : undefined;
}

function failureOf(status: number, retryAfterMs: number | undefined): WebhookDeliveryError {
  if (status >= 300 && status < 400) return new WebhookDeliveryError('WEBHOOK_REDIRECT', `the endpoint answered ${status}; redirects are not followed: update the URL`, status);
  if (status === 410) return new WebhookDeliveryError('WEBHOOK_GONE', 'the endpoint answered 410 Gone', status);
  if (status === 408 || status === 425 || status === 429 || status >= 500)
    return new WebhookDeliveryError('WEBHOOK_UNAVAILABLE', `the endpoint answered ${status}`, status, retryAfterMs);
  return new WebhookDeliveryError('WEBHOOK_REFUSED', `the endpoint answered ${status}`, status);
}

export function createWebhookDelivery(endpoint: WebhookEndpoint, options: WebhookDeliveryOptions = {}): WebhookDelivery {
  const problem = webhookUrlProblem(endpoint.url);
  if (problem !== undefined) throw new RangeError(`webhook URL ${problem}`);
  const url = new URL(endpoint.url);
  const secure = url.protocol === 'https:';
  const clock = options.clock ?? systemClock;
  const timeoutMs = options.timeoutMs ?? WEBHOOK_TIMEOUT_MS;
  const label = options.label ?? 'webhook';
  const ca = endpoint.caFile === undefined ? undefined : [...rootCertificates, readFileSync(endpoint.caFile, 'utf8')];
  const agent = secure
    ? new HttpsAgent({ keepAlive: true, maxSockets: 8, minVersion: 'TLSv1.2', ...(ca === undefined ? {} : { ca }) })
    : new HttpAgent({ keepAlive: true, maxSockets: 8 });
  const stop = new AbortController();
  let pending = 0;

  function attempt(body: Buffer, id: string): Promise<number> {
    return new Promise((resolve, reject) => {
      const headers = {
        'content-type': 'application/json',
        'content-length': String(body.length),
        'user-agent': 'Custos-Webhooks/1',
        ...webhookHeaders(endpoint.keys, id, clock.now(), body),
      };
      const req = (secure ? httpsRequest : httpRequest)(url, { method: 'POST', headers, agent, signal: stop.signal }, (res) => {
        const status = res.statusCode ?? 0;
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_ANSWER_BYTES) res.destroy();
        });
        res.on('close', () => {
          if (status >= 200 && status < 300) resolve(status);
          else reject(failureOf(status, retryAfterOf(res.headers['retry-after'], clock.now().getTime())));
        });
      });
      const deadline = setTimeout(() => req.destroy(new Error('timeout')), timeoutMs);
      req.on('close', () => clearTimeout(deadline));
      req.on('error', (error) =>
        reject(
          stop.signal.aborted
            ? new WebhookDeliveryError('WEBHOOK_CLOSED', 'the sender was closed')
            : new WebhookDeliveryError('WEBHOOK_UNREACHABLE', error.message === 'timeout' ? `no answer within ${timeoutMs} ms` : `the endpoint could not be reached (${(error as { code?: string }).code ?? 'error'})`),
        ),
      );
      req.end(body);
    });
  }

  return {
    async send(type, data, opts = {}) {
      if (stop.signal.aborted) throw new WebhookDeliveryError('WEBHOOK_CLOSED', 'the sender was closed');
      if (pending >= MAX_PENDING) throw new WebhookDeliveryError('WEBHOOK_BUSY', `${MAX_PENDING} deliveries are already waiting`);
      const id = opts.id ?? newWebhookId();
      const body = Buffer.from(JSON.stringify({ type, timestamp: (opts.timestamp ?? clock.now()).toISOString(), data }));
      let attempts = 0;
      pending++;
      try {
        const status = await withRetries(
          (n) => {
            attempts = n;
            return attempt(body, id);
          },
          {
            delaysMs: options.retryDelaysMs ?? WEBHOOK_RETRY_DELAYS_MS,
            retryable: (e) => e instanceof WebhookDeliveryError && (e.code === 'WEBHOOK_UNAVAILABLE' || e.code === 'WEBHOOK_UNREACHABLE'),
            retryAfterMs: (e) => (e instanceof WebhookDeliveryError ? e.retryAfterMs : undefined),
            onRetry: (e, n, waitMs) =>
              options.logger?.warn({ webhook: label, attempt: n, code: (e as WebhookDeliveryError).code, status: (e as WebhookDeliveryError).status, retry_in_ms: waitMs }, 'webhook attempt failed; retrying'),
            signal: stop.signal,
          },
        );
        return { id, attempts, status };
      } catch (error) {
        const failure = stop.signal.aborted
          ? new WebhookDeliveryError('WEBHOOK_CLOSED', 'the sender was closed before the endpoint took the message')
          : error instanceof WebhookDeliveryError
            ? error
            : new WebhookDeliveryError('WEBHOOK_UNREACHABLE', 'the delivery failed');
        failure.attempts = attempts;
        options.logger?.error({ webhook: label, attempts, code: failure.code, status: failure.status }, 'webhook delivery given up');
        throw failure;
      } finally {
        pending--;
      }
    },
    close() {
      stop.abort();
      agent.destroy();
    },
  };
}
