import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseWebhookSecret, verifyWebhook } from '../../src/http/webhooks.ts';
import { openWebhookSecret } from '../../src/modules/processors/service.ts';
import { seed } from '../vault/helpers.ts';
import type { AuthTest } from '../identity/helpers.ts';
import { apiCall, rightsApp } from './helpers.ts';

/**
 * GDPR Art. 19 through signed webhooks: when an erasure completes, every current recipient in the
 * processor registry is told. A recipient with an endpoint gets a Standard Webhooks message (the
 * same webhook-id on every attempt), retried with growing waits until a 2xx confirms it, or put on
 * the dead-letter list after the last attempt; one without an endpoint waits for a staff mark.
 * GET /v1/rights/requests/{id} shows who has confirmed. On SQLite and PostgreSQL.
 */
interface Received {
  id: string;
  verified: boolean;
  body: { type: string; data: { request_id: string; customer_id: string; kind: string } };
}
interface Notice {
  processor_id: string;
  status: string;
  attempts: number;
  last_error: string | null;
  confirmed_by: string | null;
}

let t: AuthTest;
let rights: string;
let shop: string;
let call: ReturnType<typeof apiCall>;
let server: Server;
let url: string;
/** Per path: the statuses to answer, in order (then 200). */
const script = new Map<string, number[]>();
const received = new Map<string, Received[]>();
const secrets = new Map<string, string>();

beforeAll(async () => {
  ({ t, rights, shop } = await rightsApp());
  call = apiCall(t);
  server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const path = req.url ?? '/';
      const raw = Buffer.concat(chunks);
      const secret = secrets.get(path);
      let verified = false;
      try {
        if (secret !== undefined) verifyWebhook([parseWebhookSecret(secret)], req.headers as Record<string, string>, raw, { now: t.clock.now() });
        verified = secret !== undefined;
      } catch {
        verified = false;
      }
      const list = received.get(path) ?? [];
      list.push({ id: String(req.headers['webhook-id']), verified, body: JSON.parse(raw.toString('utf8')) as Received['body'] });
      received.set(path, list);
      const status = script.get(path)?.shift() ?? 200;
      res.writeHead(status).end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await t.close();
  await new Promise((resolve) => server.close(resolve));
});

const recipient = async (name: string, path?: string) => {
  const p = await t.runtime.processors.add('cli', {
    name,
    purposes: ['fulfilment'],
    categories: ['location'],
    country: 'DE',
    ...(path === undefined ? {} : { webhook_url: `${url}${path}` }),
  });
  if (path !== undefined) {
    expect(p.webhook_secret).toMatch(/^whsec_/);
    secrets.set(path, p.webhook_secret!);
  }
  return p.id;
};
const notices = async (requestId: string) => {
  const res = await call('GET', `/v1/rights/requests/${requestId}`, rights);
  expect(res.statusCode, res.body).toBe(200);
  return new Map(res.json<{ recipients: Notice[] }>().recipients.map((n) => [n.processor_id, n]));
};
const later = (ms: number) => t.clock.set(new Date(t.clock.now().getTime() + ms));

describe('telling recipients of an erasure', () => {
  it('a signed webhook, retried after a 503 with the same id, confirms with a 2xx; a recipient with no endpoint is confirmed by a mark; the secret is stored sealed', async () => {
    const flaky = await recipient('Parcel Co', '/parcel');
    const manual = await recipient('Paper Invoices Ltd');
    const manualIdOf = () => manual;
    script.set('/parcel', [503]);
    const stored = await t.runtime.store.db.selectFrom('processors').select(['id', 'webhook_secret']).where('id', '=', flaky).executeTakeFirstOrThrow();
    expect(stored.webhook_secret).not.toContain('whsec_');
    expect(openWebhookSecret(t.runtime.rootKeys.webhooks, stored)).toBe(secrets.get('/parcel'));
    expect(openWebhookSecret(t.runtime.rootKeys.webhooks, { ...stored, id: manualIdOf() })).toBeUndefined(); // bound to its recipient

    const { id: customerId } = await seed(t, shop);
    const erased = await call('DELETE', `/v1/customers/${customerId}`, rights);
    expect(erased.statusCode, erased.body).toBe(202);
    const requestId = erased.json<{ id: string }>().id;
    await t.runtime.erasure.idle();
    await t.runtime.processorNotices.stop(); // the dispatch the erasure started has finished
    let n = await notices(requestId);
    expect(n.get(flaky)).toMatchObject({ status: 'pending', attempts: 1, last_error: 'WEBHOOK_UNAVAILABLE' });
    expect(n.get(manual)).toMatchObject({ status: 'awaiting_confirmation', attempts: 0 });

    expect(await t.runtime.processorNotices.dispatch()).toBe(0); // not due yet
    later(31_000);
    expect(await t.runtime.processorNotices.dispatch()).toBe(1);
    n = await notices(requestId);
    expect(n.get(flaky)).toMatchObject({ status: 'confirmed', attempts: 2, confirmed_by: 'webhook' });
    const got = received.get('/parcel')!;
    expect(got).toHaveLength(2);
    expect(got.every((r) => r.verified)).toBe(true);
    expect(got[0]!.id).toBe(got[1]!.id);
    expect(got[1]!.body).toMatchObject({ type: 'customer.erased', data: { request_id: requestId, customer_id: customerId, kind: 'erasure' } });

    const marked = await call('POST', `/v1/rights/requests/${requestId}/recipients/${manual}/confirm`, rights);
    expect(marked.statusCode, marked.body).toBe(200);
    expect(marked.json<Notice>()).toMatchObject({ status: 'confirmed', confirmed_by: expect.stringMatching(/^apikey:/) });
    await t.runtime.processors.remove('cli', flaky);
    await t.runtime.processors.remove('cli', manual);
  });

  it('an endpoint that keeps failing lands on the dead-letter list after the last attempt; sent again, it confirms', async () => {
    const down = await recipient('Always Down GmbH', '/down');
    script.set('/down', Array<number>(20).fill(500));
    const { id: customerId } = await seed(t, shop);
    const requestId = (await call('DELETE', `/v1/customers/${customerId}`, rights)).json<{ id: string }>().id;
    await t.runtime.erasure.idle();
    await t.runtime.processorNotices.stop();
    for (let i = 0; i < 10; i++) {
      later(25 * 3_600_000);
      await t.runtime.processorNotices.dispatch();
    }
    expect((await notices(requestId)).get(down)).toMatchObject({ status: 'dead', attempts: 8, last_error: 'WEBHOOK_UNAVAILABLE' });
    const dead = await call('GET', '/v1/rights/notices?status=dead', rights);
    expect(dead.json<{ data: { request_id: string; processor_id: string }[] }>().data).toContainEqual(expect.objectContaining({ request_id: requestId, processor_id: down }));
    const notDead = await call('POST', `/v1/rights/requests/${requestId}/recipients/${down}/retry`, shop);
    expect(notDead.statusCode).toBe(403); // an API key without the rights purpose
    script.set('/down', []);
    const retried = await call('POST', `/v1/rights/requests/${requestId}/recipients/${down}/retry`, rights);
    expect(retried.statusCode, retried.body).toBe(200);
    expect(retried.json<Notice>()).toMatchObject({ status: 'confirmed', confirmed_by: 'webhook' });
    const again = await call('POST', `/v1/rights/requests/${requestId}/recipients/${down}/retry`, rights);
    expect(again.json<{ error: { code: string } }>().error.code).toBe('PROCESSORS_NOTICE_NOT_DEAD');
    const entries = await t.runtime.store.db.selectFrom('audit_log').select('action').where('record_id', '=', requestId).where('action', 'like', 'processors.notice%').execute();
    expect(new Set(entries.map((e) => e.action))).toEqual(new Set(['processors.notice_failed', 'processors.notice_dead', 'processors.notice_retried', 'processors.notice_confirmed']));
  });
});
