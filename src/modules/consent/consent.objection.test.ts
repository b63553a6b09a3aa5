import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authApp, browser, codeOf, type AuthTest } from '../../../test/identity/helpers.ts';
import { staffSession } from './test-support/staff-session.ts';
import { TEST_DIALECT } from '../../../test/support/store.ts';
import { person } from '../../../test/vault/helpers.ts';

/**
 * Objection (GDPR Art. 21): a customer objects to a legitimate-interest purpose and its processing
 * stops at once for that customer (the gate at reads), until the privacy officer decides.
 */
let t: AuthTest;
let shop: string;
let fraud: string;
beforeAll(async () => {
  t = await authApp();
  shop = await t.bearer(['account']);
  fraud = await t.bearer(['fraud_prevention']);
});
afterAll(() => t.close());

const staffJar = (role: string) => staffSession(t, role);
async function newCustomer() {
  return (await t.app.inject({ method: 'POST', url: '/v1/customers', headers: { authorization: shop, 'custos-purpose': 'account' }, payload: person().customer })).json<{ id: string }>().id;
}
const object = (id: string, purpose: string) => t.app.inject({ method: 'POST', url: `/v1/customers/${id}/objections`, headers: { authorization: shop }, payload: { purpose } });
const fraudRead = async (id: string) => (await t.app.inject({ url: `/v1/customers/${id}`, headers: { authorization: fraud, 'custos-purpose': 'fraud_prevention' } })).json<Record<string, unknown>>();

describe(`objection (${TEST_DIALECT})`, () => {
  it('an objection stops legitimate-interest processing at once (logged as vault.read.objection); a rejected one lets it resume', async () => {
    const id = await newCustomer();
    expect(await fraudRead(id)).toHaveProperty('email');
    const res = await object(id, 'fraud_prevention');
    expect(res.statusCode, res.body).toBe(201);
    expect(res.json()).toMatchObject({ status: 'objected' });
    expect(await fraudRead(id)).not.toHaveProperty('email');
    const log = (await t.app.inject({ url: `/v1/customers/${id}/access-log`, headers: { authorization: shop, 'custos-purpose': 'account' } })).json<{ data: { action: string }[] }>().data.map((e) => e.action);
    expect(log).toContain('vault.read.objection');

    const agent = await staffJar('support_agent');
    const refused = await browser(t, agent, 'POST', `/v1/staff/objections/${id}/fraud_prevention`, { upheld: false });
    expect(refused.statusCode).toBe(403);
    expect(await fraudRead(id)).not.toHaveProperty('email');

    const officer = await staffJar('privacy_officer');
    const decided = await browser(t, officer, 'POST', `/v1/staff/objections/${id}/fraud_prevention`, { upheld: false });
    expect(decided.statusCode, decided.body).toBe(201);
    expect(decided.json()).toMatchObject({ status: 'objection_rejected', source: 'staff' });
    expect(await fraudRead(id)).toHaveProperty('email');
    expect(codeOf(await browser(t, officer, 'POST', `/v1/staff/objections/${id}/fraud_prevention`, { upheld: true }))).toBe('CONSENT_OBJECTION_NOT_PENDING');
    expect(await t.runtime.consent.verifyLedger()).toEqual([]);
  });

  it('an upheld objection keeps the processing stopped', async () => {
    const id = await newCustomer();
    await object(id, 'fraud_prevention');
    const officer = await staffJar('privacy_officer');
    expect((await browser(t, officer, 'POST', `/v1/staff/objections/${id}/fraud_prevention`, { upheld: true })).statusCode).toBe(201);
    expect(await fraudRead(id)).not.toHaveProperty('email');
  });

  it('refuses an objection to a purpose not based on legitimate interests, or unknown, recording nothing', async () => {
    const id = await newCustomer();
    expect(codeOf(await object(id, 'marketing'))).toBe('CONSENT_PURPOSE_NOT_OBJECTABLE');
    expect(codeOf(await object(id, 'account'))).toBe('CONSENT_PURPOSE_NOT_OBJECTABLE');
    expect(codeOf(await object(id, 'telepathy'))).toBe('CONSENT_PURPOSE_UNKNOWN');
    expect((await t.app.inject({ url: `/v1/customers/${id}/consents`, headers: { authorization: shop } })).json<{ history: unknown[] }>().history).toEqual([]);
  });
});
