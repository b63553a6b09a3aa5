import Fastify from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp } from '../../../test/support/app.ts';
import { TEST_DIALECT } from '../../../test/support/store.ts';
import { call, expectError, person } from '../../../test/vault/helpers.ts';
import { audiencePages } from './audience.ts';
import { registerConsentApiRoutes } from './routes.ts';

/**
 * GET /v1/purposes/{purpose}/audience: only customers whose consent is in force, with only that
 * purpose's fields and an unsubscribe link, one audit entry per customer released, streamed page by
 * page (each page's entries committed before it is sent, the next page read only when asked for),
 * resumable by the last customer id received. Attacks: a customer withdraws while the export runs,
 * and is released anyway from a list made before.
 */
let t: TestApp;
let shop: string;
let marketing: string;
beforeAll(async () => {
  t = await testApp();
  shop = await t.bearer(['account']);
  marketing = await t.bearer(['marketing']);
});
afterAll(() => t.close());

async function customer(consents: boolean[]): Promise<{ id: string; email: string }> {
  const p = person();
  const id = (await call(t, { method: 'POST', url: '/v1/customers', auth: shop, purpose: 'account', payload: p.customer })).json<{ id: string }>().id;
  for (const granted of consents) await call(t, { method: 'POST', url: `/v1/customers/${id}/consents`, auth: shop, payload: { purpose: 'marketing', granted, source: 'api', notice_version: 1 } });
  return { id, email: p.customer.email };
}
const lines = (body: string) => body.split('\n').filter((l) => l !== '').map((l) => JSON.parse(l) as Record<string, unknown>);

describe(`audience export (${TEST_DIALECT})`, () => {
  it('streams only customers whose consent is in force, with the purpose fields and an unsubscribe link, one audit entry each', async () => {
    const a = await customer([true]);
    const b = await customer([true, false]);
    const c = await customer([]);
    const d = await customer([true]);
    const seen: Record<string, unknown>[] = [];
    let cursor: string | undefined;
    for (let i = 0; i < 10; i++) {
      const res = await call(t, { url: `/v1/purposes/marketing/audience?limit=1${cursor === undefined ? '' : `&cursor=${cursor}`}`, auth: marketing });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.headers['content-type']).toMatch(/^application\/x-ndjson/);
      const got = lines(res.body);
      expect(got.length).toBeLessThanOrEqual(1);
      if (got.length === 0) break;
      seen.push(...got);
      cursor = String(got.at(-1)!.customer_id);
    }
    expect(seen.map((r) => r.customer_id).sort()).toEqual([a.id, d.id].sort());
    const rowA = seen.find((r) => r.customer_id === a.id)!;
    expect(Object.keys(rowA).sort()).toEqual(['customer_id', 'email', 'locale', 'name', 'unsubscribe_url']);
    expect(rowA.email).toBe(a.email);
    expect(String(rowA.unsubscribe_url)).toMatch(/\/v1\/unsubscribe\//);
    const log = async (id: string) =>
      (await call(t, { url: `/v1/customers/${id}/access-log`, auth: shop, purpose: 'account' })).json<{ data: { action: string; purpose: string }[] }>().data.filter((e) => e.purpose === 'marketing' && e.action.startsWith('vault.'));
    expect((await log(a.id)).map((e) => e.action)).toEqual(['vault.read']);
    expect(await log(b.id)).toEqual([]);
    expect(await log(c.id)).toEqual([]);
  });

  it('streams the whole audience in one response, in customer-id order; a cursor resumes exactly after the last customer received', async () => {
    for (let i = 0; i < 5; i++) await customer([true]);
    const whole = lines((await call(t, { url: '/v1/purposes/marketing/audience', auth: marketing })).body).map((r) => String(r.customer_id));
    expect(whole.length).toBeGreaterThanOrEqual(5);
    expect(whole).toEqual([...whole].sort());
    expect(new Set(whole).size).toBe(whole.length);
    const resumed: string[] = [];
    for (let cursor = ''; ; ) {
      const res = await call(t, { url: `/v1/purposes/marketing/audience?limit=2${cursor === '' ? '' : `&cursor=${cursor}`}`, auth: marketing });
      const ids = lines(res.body).map((r) => String(r.customer_id));
      resumed.push(...ids);
      if (ids.length < 2) break;
      cursor = ids.at(-1)!;
    }
    expect(resumed).toEqual(whole);
    const from = whole[2]!;
    expect(lines((await call(t, { url: `/v1/purposes/marketing/audience?cursor=${from}`, auth: marketing })).body).map((r) => r.customer_id)).toEqual(whole.slice(3));
  });

  it('a customer who withdraws while the export runs is not released after the withdrawal, even if listed before it; each page is audited before it is handed on, the next read only when asked for', async () => {
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) ids.push((await customer([true])).id);
    const mine = ids.sort();
    const before = mine[0]!;
    // Resume just before this test's customers (listing candidates reads nobody).
    const cursor = (await t.runtime.consent.candidates('marketing', '', 1000)).filter((id) => id < before).at(-1);
    const ctx = { actor: { ref: 'apikey:test', kind: 'apikey' as const, purposes: ['marketing'] }, purpose: 'marketing', requestId: 'req-audience' };
    const withdraw = (id: string) =>
      call(t, { method: 'POST', url: `/v1/customers/${id}/consents`, auth: shop, payload: { purpose: 'marketing', granted: false, source: 'api', notice_version: 1 } });
    // mine[3] withdraws after the candidates of its page were listed and before they are read.
    const consent = t.runtime.consent;
    let listed = 0;
    const racing = {
      unsubscribeUrl: consent.unsubscribeUrl.bind(consent),
      checkConsentPurpose: consent.checkConsentPurpose.bind(consent),
      async candidates(purpose: string, after: string, limit: number) {
        const found = await consent.candidates(purpose, after, limit);
        if (++listed === 2) await withdraw(mine[3]!);
        return found;
      },
    };
    const pages = audiencePages({ vault: t.runtime.vault, consent: racing }, ctx, { cursor, limit: 6 }, 2);
    const page = async () => lines((await pages.next()).value ?? '').map((r) => String(r.customer_id));
    const vaultLog = async (id: string) =>
      (await call(t, { url: `/v1/customers/${id}/access-log`, auth: shop, purpose: 'account' })).json<{ data: { action: string; purpose: string }[] }>().data.filter((e) => e.purpose === 'marketing' && e.action.startsWith('vault.')).map((e) => e.action);
    expect(await page()).toEqual([mine[0], mine[1]]);
    // The first page's entries are committed; nothing after it was read yet.
    expect(await vaultLog(mine[0]!)).toEqual(['vault.read']);
    expect(await vaultLog(mine[2]!)).toEqual([]);
    // mine[4] withdraws between pages: its page's candidates no longer list it.
    await withdraw(mine[4]!);
    expect(await page()).toEqual([mine[2]]);
    expect(await vaultLog(mine[3]!)).toEqual(['vault.read.no_consent']);
    expect(await page()).toEqual([mine[5]]);
    expect(await vaultLog(mine[4]!)).toEqual([]);
    expect((await pages.next()).done).toBe(true);
  });

  it('an export that fails half-way (the audit log stops) cuts the connection after the pages already committed, so a short list never ends like a whole one', async () => {
    const local = await testApp();
    const server = Fastify();
    try {
      const auth = await local.bearer(['account']);
      for (let i = 0; i < 3; i++) {
        const id = (await call(local, { method: 'POST', url: '/v1/customers', auth, purpose: 'account', payload: person().customer })).json<{ id: string }>().id;
        await call(local, { method: 'POST', url: `/v1/customers/${id}/consents`, auth, payload: { purpose: 'marketing', granted: true, source: 'api', notice_version: 1 } });
      }
      // The route as app.ts wires it, with pages of one customer, on a server of its own whose caller holds marketing.
      server.setValidatorCompiler(validatorCompiler);
      server.setSerializerCompiler(serializerCompiler);
      server.decorateRequest('actor', null);
      server.addHook('onRequest', async (request) => {
        request.actor = { ref: 'apikey:test', kind: 'apikey', purposes: ['marketing'] };
      });
      let sent = 0;
      registerConsentApiRoutes(server, {
        consent: local.runtime.consent,
        audience: (ctx, request) =>
          (async function* () {
            for await (const page of audiencePages({ vault: local.runtime.vault, consent: local.runtime.consent }, ctx, request, 1)) {
              yield page;
              if (++sent === 1) await local.runtime.audit.stop();
            }
          })(),
      });
      const url = await server.listen({ port: 0, host: '127.0.0.1' });
      const res = await fetch(`${url}/v1/purposes/marketing/audience`);
      expect(res.status).toBe(200);
      let received = '';
      const decoder = new TextDecoder();
      await expect(
        (async () => {
          for await (const chunk of res.body!) received += decoder.decode(chunk as Uint8Array, { stream: true });
        })(),
      ).rejects.toThrow();
      expect(lines(received)).toHaveLength(1);
    } finally {
      await server.close();
      local.runtime.audit.start();
      await local.close();
    }
  });

  it('refuses a key not scoped to the purpose, a purpose that is not consent-based, and an unknown purpose', async () => {
    expectError(await call(t, { url: '/v1/purposes/analytics/audience', auth: shop }), 403, 'POLICY_PURPOSE_NOT_ALLOWED');
    expectError(await call(t, { url: '/v1/purposes/marketing/audience', auth: shop }), 403, 'POLICY_PURPOSE_NOT_ALLOWED');
    await customer([true]);
    expectError(await call(t, { url: '/v1/purposes/account/audience', auth: shop }), 400, 'CONSENT_PURPOSE_NOT_CONSENT_BASED');
    expectError(await call(t, { url: '/v1/purposes/mind_reading/audience', auth: shop }), 400, 'CONSENT_PURPOSE_UNKNOWN');
  });
});
