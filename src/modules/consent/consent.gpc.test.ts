import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadInventory } from '../inventory/index.ts';
import { authApp, browser, customer, signIn, type AuthTest } from '../../../test/identity/helpers.ts';
import { TEST_DIALECT } from '../../../test/support/store.ts';

/**
 * The customer's own consents, and Global Privacy Control (CCPA regs §7025): `Sec-GPC: 1` on a
 * request with a customer session withdraws sale/sharing purposes once; a later explicit grant
 * stands; any other header value is no signal.
 */
let t: AuthTest;
beforeAll(async () => {
  t = await authApp();
});
afterAll(() => t.close());

type State = { purposes: { purpose: string; status: string; in_force: boolean; source: string | null }[]; history: { source: string; purpose: string }[]; gpc: { honored: boolean; at: string | null } };

async function signedIn() {
  const email = await customer(t);
  const { jar } = await signIn(t, email);
  const state = async (headers: Record<string, string> = {}) => (await browser(t, jar, 'GET', '/v1/me/consents', undefined, headers)).json<State>();
  const change = (purpose: string, granted: boolean, source = 'web_form') => browser(t, jar, 'POST', '/v1/me/consents', { purpose, granted, source, notice_version: 1 });
  return { jar, state, change };
}
const of = (s: State, purpose: string) => s.purposes.find((p) => p.purpose === purpose)!;

describe(`my consents and GPC (${TEST_DIALECT})`, () => {
  it('a customer grants and withdraws for themself; a source only the shop may record is refused', async () => {
    const me = await signedIn();
    const granted = await me.change('marketing', true);
    expect(granted.statusCode, granted.body).toBe(201);
    expect(granted.json()).toMatchObject({ status: 'granted', in_force: true });
    expect((await me.change('marketing', true, 'import')).json<{ error: { code: string } }>().error.code).toBe('CONSENT_SOURCE_INVALID');
    expect((await me.change('account', true)).json<{ error: { code: string } }>().error.code).toBe('CONSENT_PURPOSE_NOT_CONSENT_BASED');
    expect((await me.change('marketing', false)).statusCode).toBe(201);
    const s = await me.state();
    expect(of(s, 'marketing')).toMatchObject({ status: 'withdrawn', in_force: false });
    expect(s.history).toHaveLength(2);
  });

  it('Sec-GPC: 1 withdraws sale/sharing grants made before it, once; a later explicit grant stands', async () => {
    const me = await signedIn();
    await me.change('third_party_sharing', true);
    await me.change('marketing', true);
    expect(of(await me.state(), 'third_party_sharing').in_force).toBe(true);
    const after = await me.state({ 'sec-gpc': '1' });
    expect(of(after, 'third_party_sharing')).toMatchObject({ status: 'withdrawn', in_force: false, source: 'gpc' });
    expect(of(after, 'marketing').in_force).toBe(true);
    expect(after.gpc.honored).toBe(true);
    await me.state({ 'sec-gpc': '1' });
    expect((await me.state()).history.filter((h) => h.source === 'gpc')).toHaveLength(1);
    await me.change('third_party_sharing', true);
    const regranted = await me.state({ 'sec-gpc': '1' });
    expect(of(regranted, 'third_party_sharing')).toMatchObject({ status: 'granted', in_force: true });
    expect(regranted.history.filter((h) => h.source === 'gpc')).toHaveLength(1);
  });

  it('a Sec-GPC value other than 1 is no signal, never an error', async () => {
    const me = await signedIn();
    await me.change('third_party_sharing', true);
    for (const value of ['0', 'true', '1 ', 'yes', ''])
      expect((await browser(t, me.jar, 'GET', '/v1/me/consents', undefined, { 'sec-gpc': value })).statusCode).toBe(200);
    const s = await me.state();
    expect(of(s, 'third_party_sharing').in_force).toBe(true);
    expect(s.gpc).toEqual({ honored: false, at: null });
  });

  it('GPC on another signed-in route counts too, and /.well-known/gpc.json is served', async () => {
    const me = await signedIn();
    await me.change('third_party_sharing', true);
    expect((await browser(t, me.jar, 'GET', '/v1/me', undefined, { 'sec-gpc': '1' })).statusCode).toBe(200);
    expect(of(await me.state(), 'third_party_sharing').in_force).toBe(false);
    const gpc = await t.app.inject({ url: '/.well-known/gpc.json' });
    expect(gpc.statusCode).toBe(200);
    expect(gpc.json()).toEqual({ gpc: true, lastUpdate: expect.stringMatching(/^\d{4}-\d{2}-\d{2}$/) });
  });

  it('the shop forwards a GPC signal it saw with source gpc (a withdrawal of a sale/sharing purpose only)', async () => {
    const me = await signedIn();
    await me.change('third_party_sharing', true);
    const s = await me.state();
    const id = (await browser(t, me.jar, 'GET', '/v1/me')).json<{ id: string }>().id;
    const auth = await t.bearer(['account']);
    const post = (payload: Record<string, unknown>) => t.app.inject({ method: 'POST', url: `/v1/customers/${id}/consents`, headers: { authorization: auth }, payload });
    expect((await post({ purpose: 'third_party_sharing', granted: false, source: 'gpc', notice_version: 1 })).json()).toMatchObject({ status: 'withdrawn', source: 'gpc', in_force: false });
    expect((await post({ purpose: 'third_party_sharing', granted: false, source: 'gpc', notice_version: 1 })).statusCode).toBe(201);
    expect((await me.state()).history.filter((h) => h.source === 'gpc')).toHaveLength(1);
    expect(s.gpc.honored).toBe(false);
  });
});

describe('inventory: consent-based purposes', () => {
  it('the loader refuses a purpose that mixes consent with another legal basis', () => {
    const file = join(t.db.dir, 'mixed.yaml');
    writeFileSync(
      file,
      ['version: 1', 'extends: default', 'collections:', '  customers:', '    fields:', '      phone:', '        type: phone', '        category: contact', '        protection: searchable', '        retention: account_lifetime', '        purposes:', '          marketing: { basis: legitimate_interest }', ''].join('\n'),
    );
    expect(() => loadInventory(file)).toThrow(/purposes\.marketing: mixes consent with other legal bases \(consent, legitimate_interest\)/);
  });

  it('a plain string description still loads, in every notice language', () => {
    const file = join(t.db.dir, 'plain.yaml');
    writeFileSync(file, ['version: 1', 'extends: default', 'purposes:', '  analytics:', '    description: Shop statistics.', ''].join('\n'));
    expect(loadInventory(file).purposes.get('analytics')).toMatchObject({ description: 'Shop statistics.', descriptions: { en: 'Shop statistics.', de: 'Shop statistics.' }, consentBased: true });
    expect(loadInventory().purposes.get('third_party_sharing')).toMatchObject({ consentBased: true, saleOrSharing: true });
  });
});
