import { createPublicKey, verify } from 'node:crypto';
import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../app.ts';
import { main } from '../../cli/main.ts';
import type { Io } from '../../cli/io.ts';
import { loadConfig } from '../../config/config.ts';
import { openRuntime } from '../../runtime.ts';
import { testApp, type TestApp } from '../../../test/support/app.ts';
import { TEST_DIALECT } from '../../../test/support/store.ts';
import { call, person } from '../../../test/vault/helpers.ts';
import { legacyReceiptKey, signReceipt } from './receipts.ts';

/**
 * The receipts signing key on the key store's lifecycle: `custos keys rotate --key receipts` adds a
 * version, a process takes it up at its next start, and every receipt signed before (under an older
 * version, or under a key derived before the lifecycle existed) still verifies with the JWK set at
 * /v1/keys/receipts. Attack: a rotation used to make a customer's proof of consent unverifiable.
 */
let t: TestApp;
let shop: string;
beforeAll(async () => {
  t = await testApp();
  shop = await t.bearer(['account']);
});
afterAll(() => t.close());

interface Jwk {
  kid: string;
  x: string;
}
const kidOf = (receipt: string) => (JSON.parse(Buffer.from(receipt.split('.')[0]!, 'base64url').toString()) as { kid: string }).kid;
/** Verifies as anyone would: the key of the receipt's kid from the JWK set, EdDSA over the first two parts. */
function verifiesWith(keys: readonly Jwk[], receipt: string): boolean {
  const jwk = keys.find((k) => k.kid === kidOf(receipt));
  if (jwk === undefined) return false;
  const [h, p, s] = receipt.split('.') as [string, string, string];
  return verify(null, Buffer.from(`${h}.${p}`), createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: jwk.x }, format: 'jwk' }), Buffer.from(s, 'base64url'));
}

/** A whole Custos started again on the same database (as after a restart). */
async function restarted(run: (inject: (o: { method?: 'GET' | 'POST'; url: string; payload?: unknown; auth?: string }) => Promise<LightMyRequestResponse>) => Promise<void>) {
  const runtime = await openRuntime(loadConfig(t.env));
  const app = await buildApp(runtime);
  try {
    await run((o) => app.inject({ method: o.method ?? 'GET', url: o.url, ...(o.payload === undefined ? {} : { payload: o.payload as object }), headers: o.auth === undefined ? {} : { authorization: o.auth } }));
  } finally {
    await app.close();
    await runtime.close();
  }
}

describe(`consent receipts keys (${TEST_DIALECT})`, () => {
  it('a receipt signed before `custos keys rotate --key receipts` still verifies with /v1/keys/receipts after it; new receipts are signed by the new version', async () => {
    const id = (await call(t, { method: 'POST', url: '/v1/customers', auth: shop, purpose: 'account', payload: person().customer })).json<{ id: string }>().id;
    const grant = { purpose: 'marketing', granted: true, source: 'web_form', notice_version: 1 };
    const before = (await call(t, { method: 'POST', url: `/v1/customers/${id}/consents`, auth: shop, payload: grant })).json<{ receipt: string }>().receipt;
    expect(kidOf(before)).toMatch(/^consent-v1-/);

    const out: string[] = [];
    const io: Io = { out: (l) => void out.push(l), err: (l) => void out.push(l), progress: () => undefined, done: () => undefined };
    expect(await main(['keys', 'rotate', '--key', 'receipts'], io, t.env), out.join('\n')).toBe(0);

    await restarted(async (inject) => {
      const after = (await inject({ method: 'POST', url: `/v1/customers/${id}/consents`, auth: shop, payload: { ...grant, granted: false } })).json<{ receipt: string }>().receipt;
      expect(kidOf(after)).toMatch(/^consent-v2-/);
      const keys = (await inject({ url: '/v1/keys/receipts' })).json<{ keys: Jwk[] }>().keys;
      expect(keys.map((k) => k.kid.split('-').slice(0, 2).join('-'))).toEqual(['consent-v2', 'consent-v1']);
      expect(verifiesWith(keys, before)).toBe(true);
      expect(verifiesWith(keys, after)).toBe(true);
      const checked = await inject({ method: 'POST', url: '/v1/receipts/verify', payload: { receipt: before } });
      expect(checked.statusCode, checked.body).toBe(200);
      expect(checked.json()).toMatchObject({ valid: true, kid: kidOf(before), payload: { sub: id, status: 'granted' } });
    });
  });

  it('receipts signed under the keys a database had before the key store lifecycle (listed in consent_receipt_keys) still verify', async () => {
    const old = legacyReceiptKey(t.runtime.rootKeys.consentBase, 1);
    const receipt = await signReceipt({ current: async () => old, publicKeys: async () => [old.jwk] }, { iss: 'custos', jti: 'cns_old', sub: 'cus_old', purpose: 'marketing', status: 'granted' });
    expect((await call(t, { method: 'POST', url: '/v1/receipts/verify', payload: { receipt } })).statusCode).toBe(400);
    await t.runtime.store.db.insertInto('consent_receipt_keys').values({ version: 1, created_at: new Date().toISOString(), retired_at: null }).execute();
    await restarted(async (inject) => {
      const keys = (await inject({ url: '/v1/keys/receipts' })).json<{ keys: Jwk[] }>().keys;
      expect(keys.at(-1)!.kid).toBe(old.kid);
      expect(verifiesWith(keys, receipt)).toBe(true);
      expect((await inject({ method: 'POST', url: '/v1/receipts/verify', payload: { receipt } })).json()).toMatchObject({ valid: true, kid: old.kid });
    });
  });
});
