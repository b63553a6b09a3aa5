import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { loopbackCertificate } from '../../test/support/loopback-tls.ts';
import { createLogger } from '../kernel/logger.ts';
import { createWebhookDelivery, webhookUrlProblem, WebhookDeliveryError } from './webhook-delivery.ts';
import { newWebhookSecret, parseWebhookSecret, signWebhook, verifyWebhook, WebhookVerificationError, webhookHeaders } from './webhooks.ts';

describe('Standard Webhooks signatures', () => {
  it('matches the reference libraries\u2019 published vector', () => {
    // standard-webhooks/libraries/python/tests/test_webhooks.py, test_sign_function
    const key = parseWebhookSecret('whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw');
    expect(signWebhook([key], 'msg_p5jXN8AQM9LWM0D4loKWxJek', 1614265330, '{"test": 2432232314}')).toBe('v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE=');
  });

  it('refuses secrets that are not whsec_ and 24 to 64 bytes, without repeating them', () => {
    for (const bad of ['MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw', 'whsec_', 'whsec_not base64!', `whsec_${Buffer.alloc(16, 1).toString('base64')}`, `whsec_${Buffer.alloc(65, 1).toString('base64')}`]) {
      expect(() => parseWebhookSecret(bad)).toThrow(RangeError);
      try {
        parseWebhookSecret(bad);
      } catch (error) {
        if (bad.length > 8) expect((error as Error).message).not.toContain(bad.slice(6));
      }
    }
    expect(parseWebhookSecret(newWebhookSecret())).toHaveLength(32);
  });

  const key = parseWebhookSecret(newWebhookSecret());
  const now = new Date('2026-05-01T10:00:00Z');
  const body = '{"type":"security.alert","timestamp":"2026-05-01T10:00:00.000Z","data":{"id":"alr_1"}}';

  it('verifies what it signs, with any of several keys (rotation)', () => {
    const old = parseWebhookSecret(newWebhookSecret());
    const headers = webhookHeaders([key, old], 'msg_1', now, body);
    expect(headers['webhook-signature']!.split(' ')).toHaveLength(2);
    expect(verifyWebhook([key], headers, body, { now })).toEqual({ id: 'msg_1', timestamp: now.getTime() / 1000 });
    expect(verifyWebhook([old], headers, Buffer.from(body), { now }).id).toBe('msg_1');
    // header names are case-insensitive
    expect(verifyWebhook([key], { 'Webhook-Id': headers['webhook-id'], 'WEBHOOK-TIMESTAMP': headers['webhook-timestamp'], 'webhook-signature': headers['webhook-signature'] }, body, { now }).id).toBe('msg_1');
  });

  it('refuses a tampered body, id or timestamp, another key, and a replay outside 5 minutes', () => {
    const headers = webhookHeaders([key], 'msg_1', now, body);
    const refuse = (h: Record<string, string>, b: string, at = now, keys = [key]) => expect(() => verifyWebhook(keys, h, b, { now: at })).toThrow(WebhookVerificationError);
    refuse(headers, body.replace('alr_1', 'alr_2'));
    refuse({ ...headers, 'webhook-id': 'msg_2' }, body);
    refuse({ ...headers, 'webhook-timestamp': String(now.getTime() / 1000 + 1) }, body);
    refuse(headers, body, now, [parseWebhookSecret(newWebhookSecret())]);
    refuse(headers, body, new Date(now.getTime() + 301_000));
    refuse(headers, body, new Date(now.getTime() - 301_000));
    refuse({ ...headers, 'webhook-signature': headers['webhook-signature']!.replace('v1,', 'v1a,') }, body);
    refuse({ 'webhook-id': 'msg_1', 'webhook-timestamp': headers['webhook-timestamp']! }, body);
    refuse({ ...headers, 'webhook-timestamp': '1e9' }, body);
  });

  it('any change to a signed body fails verification (property)', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 1, maxLength: 200 }), fc.nat(), fc.integer({ min: 1, max: 255 }), (bytes, at, flip) => {
        const raw = Buffer.from(bytes);
        const headers = webhookHeaders([key], 'msg_p', now, raw);
        expect(verifyWebhook([key], headers, raw, { now }).id).toBe('msg_p');
        const changed = Buffer.from(raw);
        const i = at % changed.length;
        changed[i] = changed[i]! ^ flip;
        expect(() => verifyWebhook([key], headers, changed, { now })).toThrow(WebhookVerificationError);
      }),
    );
  });
});

describe('webhook URLs', () => {
  it('want https, except to loopback, and no credentials', () => {
    expect(webhookUrlProblem('https://siem.shop.example/hooks')).toBeUndefined();
    expect(webhookUrlProblem('http://127.0.0.1:9000/hooks')).toBeUndefined();
    expect(webhookUrlProblem('http://[::1]:9000/hooks')).toBeUndefined();
    expect(webhookUrlProblem('http://localhost/hooks')).toBeUndefined();
    expect(webhookUrlProblem('http://siem.shop.example/hooks')).toMatch(/https/);
    expect(webhookUrlProblem('http://10.0.0.8/hooks')).toMatch(/https/);
    expect(webhookUrlProblem('https://user:pw@siem.shop.example/')).toMatch(/user name/);
    expect(webhookUrlProblem('ftp://siem.shop.example/')).toMatch(/https/);
    expect(webhookUrlProblem('not a url')).toMatch(/absolute URL/);
  });
});

interface Received {
  headers: IncomingMessage['headers'];
  body: Buffer;
  verified: boolean;
}

describe('webhook delivery to a real server on loopback', () => {
  const servers: Server[] = [];
  afterEach(async () => {
    await Promise.all(servers.splice(0).map((s) => new Promise((r) => s.close(r))));
  });

  /** A receiver that verifies each request with `keys`, then answers what `answer` says. */
  async function receiver(keys: Buffer[], answer: (n: number, r: Received, res: ServerResponse) => void, tls?: { cert: string; key: string }) {
    const received: Received[] = [];
    const handler = (req: IncomingMessage, res: ServerResponse) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks);
        let verified = true;
        try {
          verifyWebhook(keys, req.headers as Record<string, string>, body);
        } catch {
          verified = false;
        }
        const r = { headers: req.headers, body, verified };
        received.push(r);
        if (!verified) {
          res.writeHead(401).end();
          return;
        }
        answer(received.length, r, res);
      });
    };
    const server = tls === undefined ? createHttpServer(handler) : createHttpsServer(tls, handler);
    servers.push(server);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    return { port: (server.address() as AddressInfo).port, received };
  }

  const secret = newWebhookSecret();
  const keys = [parseWebhookSecret(secret)];
  const alert = { id: 'alr_1', rule: 'honeytoken', severity: 'critical' };

  it('posts a signed envelope over HTTPS that the receiver verifies; a tampered copy fails', async () => {
    const tls = await loopbackCertificate();
    const rx = await receiver(keys, (_n, _r, res) => res.writeHead(204).end(), tls);
    const delivery = createWebhookDelivery({ url: `https://localhost:${rx.port}/hooks/custos`, keys, caFile: tls.caFile }, { retryDelaysMs: [] });
    try {
      const sent = await delivery.send('security.alert', alert, { timestamp: new Date('2026-05-01T10:00:00Z') });
      expect(sent).toMatchObject({ attempts: 1, status: 204 });
      const [got] = rx.received;
      expect(got?.verified).toBe(true);
      expect(got?.headers['content-type']).toBe('application/json');
      expect(got?.headers['webhook-id']).toBe(sent.id);
      expect(JSON.parse(got!.body.toString())).toEqual({ type: 'security.alert', timestamp: '2026-05-01T10:00:00.000Z', data: alert });
      // The same request with one byte of the body changed does not verify.
      const tampered = Buffer.from(got!.body.toString().replace('critical', 'low   '));
      expect(() => verifyWebhook(keys, got!.headers as Record<string, string>, tampered)).toThrow(WebhookVerificationError);
    } finally {
      delivery.close();
    }
  });

  it('does not trust a certificate outside the system CAs and the given CA', async () => {
    const tls = await loopbackCertificate();
    const rx = await receiver(keys, (_n, _r, res) => res.writeHead(204).end(), tls);
    const delivery = createWebhookDelivery({ url: `https://localhost:${rx.port}/`, keys }, { retryDelaysMs: [] });
    try {
      await expect(delivery.send('security.alert', alert)).rejects.toMatchObject({ code: 'WEBHOOK_UNREACHABLE', attempts: 1 });
      expect(rx.received).toHaveLength(0);
    } finally {
      delivery.close();
    }
  });

  it('a receiver holding another secret refuses it, and a 4xx is not retried', async () => {
    const rx = await receiver([parseWebhookSecret(newWebhookSecret())], (_n, _r, res) => res.writeHead(204).end());
    const delivery = createWebhookDelivery({ url: `http://127.0.0.1:${rx.port}/`, keys }, { retryDelaysMs: [1, 1, 1] });
    try {
      await expect(delivery.send('security.alert', alert)).rejects.toMatchObject({ code: 'WEBHOOK_REFUSED', status: 401, attempts: 1 });
      expect(rx.received.map((r) => r.verified)).toEqual([false]);
    } finally {
      delivery.close();
    }
  });

  it('retries 503 and dropped connections with the same webhook-id, each attempt signed anew', async () => {
    const rx = await receiver(keys, (n, _r, res) => {
      if (n === 1) res.writeHead(503, { 'retry-after': '0' }).end();
      else if (n === 2) res.socket?.destroy();
      else res.writeHead(200).end('ok');
    });
    const delivery = createWebhookDelivery({ url: `http://127.0.0.1:${rx.port}/`, keys }, { retryDelaysMs: [5, 5, 5] });
    try {
      const sent = await delivery.send('security.alert', alert);
      expect(sent.attempts).toBe(3);
      expect(rx.received.every((r) => r.verified && r.headers['webhook-id'] === sent.id)).toBe(true);
      expect(rx.received).toHaveLength(3);
    } finally {
      delivery.close();
    }
  });

  it('never follows a redirect, and stops at 410 Gone', async () => {
    let redirectedTo = 0;
    const target = await receiver(keys, (_n, _r, res) => {
      redirectedTo++;
      res.writeHead(204).end();
    });
    const redirecting = await receiver(keys, (_n, _r, res) => res.writeHead(307, { location: `http://127.0.0.1:${target.port}/` }).end());
    const gone = await receiver(keys, (_n, _r, res) => res.writeHead(410).end());
    const a = createWebhookDelivery({ url: `http://127.0.0.1:${redirecting.port}/`, keys }, { retryDelaysMs: [1, 1] });
    const b = createWebhookDelivery({ url: `http://127.0.0.1:${gone.port}/`, keys }, { retryDelaysMs: [1, 1] });
    try {
      await expect(a.send('security.alert', alert)).rejects.toMatchObject({ code: 'WEBHOOK_REDIRECT', attempts: 1 });
      await expect(b.send('security.alert', alert)).rejects.toMatchObject({ code: 'WEBHOOK_GONE', attempts: 1 });
      expect(redirectedTo).toBe(0);
      expect(gone.received).toHaveLength(1);
    } finally {
      a.close();
      b.close();
    }
  });

  it('gives up on an endpoint that does not answer in time, and logs no URL, token, secret or body', async () => {
    const rx = await receiver(keys, () => undefined); // never answers
    const lines: string[] = [];
    const stream = new PassThrough();
    stream.on('data', (c: Buffer) => lines.push(c.toString()));
    const delivery = createWebhookDelivery(
      { url: `http://127.0.0.1:${rx.port}/hooks?token=sekrit-token`, keys },
      { timeoutMs: 100, retryDelaysMs: [1], logger: createLogger('info', stream), label: 'alerts' },
    );
    try {
      const failure = await delivery.send('security.alert', { ...alert, title: 'Honeytoken read' }).catch((e: unknown) => e);
      expect(failure).toBeInstanceOf(WebhookDeliveryError);
      expect(failure).toMatchObject({ code: 'WEBHOOK_UNREACHABLE', attempts: 2 });
      expect(rx.received).toHaveLength(2);
      const log = lines.join('');
      expect(log).toContain('webhook delivery given up');
      for (const leak of ['sekrit-token', '/hooks', secret.slice(6), 'Honeytoken read', 'alr_1']) expect(log).not.toContain(leak);
    } finally {
      delivery.close();
    }
  });

  it('close() ends a delivery waiting for its next attempt', async () => {
    const rx = await receiver(keys, (_n, _r, res) => res.writeHead(500).end());
    const delivery = createWebhookDelivery({ url: `http://127.0.0.1:${rx.port}/`, keys }, { retryDelaysMs: [60_000] });
    const pending = delivery.send('security.alert', alert).catch((e: unknown) => e);
    while (rx.received.length === 0) await new Promise((r) => setTimeout(r, 5));
    delivery.close();
    expect(await pending).toMatchObject({ code: 'WEBHOOK_CLOSED' });
    await expect(delivery.send('security.alert', alert)).rejects.toMatchObject({ code: 'WEBHOOK_CLOSED' });
  });
});
