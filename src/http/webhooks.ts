import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Signing and verifying webhooks in the Standard Webhooks scheme, version 1.0.0
 * (https://www.standardwebhooks.com, spec/standard-webhooks.md): symmetric signatures only.
 *
 * - Headers `webhook-id` (the same on every retry of one message), `webhook-timestamp` (Unix
 *   seconds of this attempt) and `webhook-signature`: `v1,<base64 HMAC-SHA256 of "id.timestamp.body">`,
 *   one per key, space-separated (several keys while a secret is rotated).
 * - Secrets are `whsec_<base64>` of 24 to 64 random bytes.
 * - Verifying compares in constant time and refuses a timestamp more than 5 minutes off.
 *
 * Written on node:crypto rather than the `standardwebhooks` package (pure-JS SHA-256, CommonJS);
 * a test checks it against the reference libraries' published vector.
 */
export const WEBHOOK_SECRET_PREFIX = 'whsec_';
/** Bounds of the signing secret, in bytes (Standard Webhooks 1.0.0, "Signature scheme"). */
export const WEBHOOK_SECRET_BYTES = { min: 24, max: 64 } as const;
/** How far `webhook-timestamp` may be from the verifier's clock (the reference libraries' tolerance). */
export const WEBHOOK_TOLERANCE_SECONDS = 5 * 60;

export class WebhookVerificationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'WebhookVerificationError';
  }
}

/** `whsec_<base64>` → the key bytes. The message of a refusal never repeats the value. */
export function parseWebhookSecret(text: string): Buffer {
  if (!text.startsWith(WEBHOOK_SECRET_PREFIX)) throw new RangeError(`must start with ${WEBHOOK_SECRET_PREFIX}`);
  const encoded = text.slice(WEBHOOK_SECRET_PREFIX.length);
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(encoded)) throw new RangeError(`must be ${WEBHOOK_SECRET_PREFIX} followed by base64`);
  const key = Buffer.from(encoded, 'base64');
  if (key.length < WEBHOOK_SECRET_BYTES.min || key.length > WEBHOOK_SECRET_BYTES.max)
    throw new RangeError(`must hold ${WEBHOOK_SECRET_BYTES.min} to ${WEBHOOK_SECRET_BYTES.max} bytes (whsec_$(openssl rand -base64 32))`);
  return key;
}

/** A new secret to give both sides: `whsec_` + 32 random bytes in base64. */
export function newWebhookSecret(): string {
  return `${WEBHOOK_SECRET_PREFIX}${randomBytes(32).toString('base64')}`;
}

/** A message id: `msg_` + 128 random bits, never a `.` (it is a field separator of the signed content). */
export function newWebhookId(): string {
  return `msg_${randomBytes(16).toString('base64url')}`;
}

const ID = /^[A-Za-z0-9_-]{1,256}$/;

function mac(key: Buffer, id: string, timestamp: number, body: string | Buffer): Buffer {
  return createHmac('sha256', key).update(`${id}.${timestamp}.`).update(body).digest();
}

/** The `webhook-signature` value: one `v1,<base64>` per key, space-separated. */
export function signWebhook(keys: readonly Buffer[], id: string, timestamp: number, body: string | Buffer): string {
  if (keys.length === 0) throw new RangeError('at least one key is needed');
  if (!ID.test(id)) throw new RangeError('a webhook id is 1 to 256 characters of A-Z a-z 0-9 _ -');
  if (!Number.isSafeInteger(timestamp) || timestamp < 0) throw new RangeError('the timestamp is whole Unix seconds');
  return keys.map((key) => `v1,${mac(key, id, timestamp, body).toString('base64')}`).join(' ');
}

/** The three headers of one attempt, for a body sent exactly as signed. */
export function webhookHeaders(keys: readonly Buffer[], id: string, at: Date, body: string | Buffer): Record<string, string> {
  const timestamp = Math.floor(at.getTime() / 1000);
  return { 'webhook-id': id, 'webhook-timestamp': String(timestamp), 'webhook-signature': signWebhook(keys, id, timestamp, body) };
}

type HeaderBag = Readonly<Record<string, string | readonly string[] | undefined>>;

function header(headers: HeaderBag, name: string): string | undefined {
  for (const [key, value] of Object.entries(headers)) {
    if (key.toLowerCase() !== name) continue;
    if (typeof value === 'string') return value;
    return value?.length === 1 ? value[0] : undefined;
  }
  return undefined;
}

/**
 * Checks a received webhook against one or more keys: the raw body as received (before any JSON
 * parsing), the three headers, and the clock. Returns the id (use it to drop a repeat) and the
 * timestamp; throws WebhookVerificationError otherwise.
 */
export function verifyWebhook(
  keys: readonly Buffer[],
  headers: HeaderBag,
  body: string | Buffer,
  options: { now?: Date; toleranceSeconds?: number } = {},
): { id: string; timestamp: number } {
  const id = header(headers, 'webhook-id');
  const stamp = header(headers, 'webhook-timestamp');
  const signatures = header(headers, 'webhook-signature');
  if (id === undefined || stamp === undefined || signatures === undefined) throw new WebhookVerificationError('missing webhook headers');
  if (!ID.test(id) || !/^\d{1,12}$/.test(stamp)) throw new WebhookVerificationError('malformed webhook headers');
  const timestamp = Number(stamp);
  const now = Math.floor((options.now ?? new Date()).getTime() / 1000);
  if (Math.abs(now - timestamp) > (options.toleranceSeconds ?? WEBHOOK_TOLERANCE_SECONDS)) throw new WebhookVerificationError('webhook timestamp outside the tolerance');
  const expected = keys.map((key) => mac(key, id, timestamp, body));
  for (const entry of signatures.split(' ')) {
    const [version, value] = entry.split(',', 2);
    if (version !== 'v1' || value === undefined) continue;
    const given = Buffer.from(value, 'base64');
    if (given.length !== 32) continue;
    if (expected.some((e) => timingSafeEqual(e, given))) return { id, timestamp };
  }
  throw new WebhookVerificationError('no matching webhook signature');
}
