import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { browser, codeOf, customer, signIn, type AuthTest } from '../identity/helpers.ts';
import { seed } from '../vault/helpers.ts';
import { apiCall, rightsApp } from './helpers.ts';

/**
 * Restriction of processing (GDPR Art. 18), on SQLite and PostgreSQL. Attacks: reads of a
 * restricted customer under ordinary purposes (profile, orders, lookup by email) are refused at
 * the policy decision point and recorded; legal_obligation, the rights process, the customer
 * themself and the purposes the customer consented to still read; a lift reaches the customer
 * before it takes effect, and a customer who cannot be told keeps the restriction.
 */
let t: AuthTest;
let rights: string;
let shop: string;
let call: ReturnType<typeof apiCall>;
beforeAll(async () => {
  ({ t, rights, shop } = await rightsApp());
  call = apiCall(t);
});
afterAll(async () => t.close());

const read = (id: string, purpose: string, auth = shop) => call('GET', `/v1/customers/${id}`, auth, undefined, { 'custos-purpose': purpose });

/** A customer who signed up (so the shop's record has their email) and restricted their data themself. */
async function restrictedCustomer(allow?: string[]) {
  const email = await customer(t);
  const { jar } = await signIn(t, email);
  const me = (await browser(t, jar, 'GET', '/v1/me')).json<{ id: string }>();
  const res = await browser(t, jar, 'POST', '/v1/me/rights-requests', { kind: 'restriction', ...(allow === undefined ? {} : { allow_purposes: allow }) });
  expect(res.statusCode, res.body).toBe(201);
  expect(res.json<{ state: string }>().state).toBe('completed');
  return { id: me.id, email, jar };
}

describe('a restricted customer', () => {
  it('is refused to every ordinary purpose (profile, orders, lookup), with a stable code and an audit entry', async () => {
    const { id, email } = await restrictedCustomer();
    for (const purpose of ['account', 'fulfilment', 'support', 'fraud_prevention']) {
      const auth = await t.bearer([purpose]);
      const res = await read(id, purpose, auth);
      expect(res.statusCode, purpose).toBe(403);
      expect(codeOf(res)).toBe('POLICY_SUBJECT_RESTRICTED');
      expect(res.body).not.toContain(email);
    }
    const stored = await call('POST', `/v1/customers/${id}/orders`, shop, { number: `R-${Date.now()}`, placed_at: '2026-03-01T10:00:00Z', currency: 'EUR', total: '1.00', status: 'paid' });
    expect(stored.statusCode, stored.body).toBe(201);
    // Stored, not processed: the shop still records what it must; reading it back for account is refused.
    const orders = await call('GET', `/v1/customers/${id}/orders`, shop, undefined, { 'custos-purpose': 'account' });
    expect(codeOf(orders)).toBe('POLICY_SUBJECT_RESTRICTED');
    // A lookup does not reveal the restricted customer at all.
    const found = await call('GET', `/v1/customers?email=${encodeURIComponent(email)}`, shop, undefined, { 'custos-purpose': 'account' });
    expect(found.statusCode, found.body).toBe(200);
    expect(found.body).not.toContain(id);
    await t.runtime.audit.chainPending();
    const refused = (await t.runtime.audit.forSubject(id, { limit: 200 })).filter((e) => e.action === 'rights.restriction.read_refused');
    expect(refused.length).toBeGreaterThanOrEqual(4);
    expect(refused.every((e) => e.outcome === 'denied')).toBe(true);
  });

  it('is left out of a consent-based audience even with consent in force; the audience still answers', async () => {
    const marketer = await t.bearer(['account', 'marketing']);
    const { id } = await seed(t, shop);
    const { id: other } = await seed(t, shop);
    for (const c of [id, other]) await call('POST', `/v1/customers/${c}/consents`, marketer, { purpose: 'marketing', granted: true, source: 'api', notice_version: 1 });
    await call('POST', '/v1/rights/requests', rights, { kind: 'restriction', customer_id: id });
    const audience = await call('GET', '/v1/purposes/marketing/audience?limit=1000', marketer, undefined, { 'custos-purpose': 'marketing' });
    expect(audience.statusCode, audience.body).toBe(200);
    expect(audience.body).toContain(other);
    expect(audience.body).not.toContain(id);
  });

  it('is still read for legal_obligation, by the customer themself, and for the rights process (an export)', async () => {
    const { id, email, jar } = await restrictedCustomer();
    const legal = await read(id, 'legal_obligation');
    expect(legal.statusCode, legal.body).toBe(200);
    const own = await browser(t, jar, 'GET', '/v1/me');
    expect(own.statusCode).toBe(200);
    expect(own.json<{ email: string }>().email).toBe(email);
    const access = await browser(t, jar, 'POST', '/v1/me/rights-requests', { kind: 'access' });
    const token = access.json<{ export: { token: string } }>().export.token;
    const download = await t.app.inject({ method: 'POST', url: '/v1/exports/download', payload: { token } });
    expect(download.statusCode).toBe(200);
  });

  it('is read for a purpose the customer consented to when restricting, and only that one', async () => {
    const { id } = await restrictedCustomer(['fulfilment']);
    expect((await read(id, 'fulfilment')).statusCode).toBe(200);
    expect(codeOf(await read(id, 'account'))).toBe('POLICY_SUBJECT_RESTRICTED');
    expect((await call('GET', `/v1/customers/${id}/restriction`, rights)).json()).toMatchObject({ restricted: true, allowed_purposes: ['fulfilment'] });
  });

  it('a purpose the inventory does not declare is refused, and no request is recorded', async () => {
    const email = await customer(t);
    const { jar } = await signIn(t, email);
    const res = await browser(t, jar, 'POST', '/v1/me/rights-requests', { kind: 'restriction', allow_purposes: ['telepathy'] });
    expect(res.statusCode).toBe(400);
    expect(codeOf(res)).toBe('RIGHTS_PURPOSE_UNKNOWN');
    expect((await browser(t, jar, 'GET', '/v1/me/rights-requests')).json<{ data: unknown[] }>().data).toEqual([]);
  });

  it('a restriction filed by the shop is in force at once', async () => {
    const { id } = await seed(t, shop);
    const res = await call('POST', '/v1/rights/requests', rights, { kind: 'restriction', customer_id: id });
    expect(res.json<{ state: string }>().state).toBe('completed');
    expect(codeOf(await read(id, 'account'))).toBe('POLICY_SUBJECT_RESTRICTED');
  });
});

describe('lifting a restriction (Art. 18(3))', () => {
  it('tells the customer first; the restriction holds until the notice has run', async () => {
    const { id, email, jar } = await restrictedCustomer();
    const before = (await t.outbox()).length;
    const res = await call('POST', `/v1/customers/${id}/restriction/lift`, rights, { reason: 'The address you disputed was checked and is correct.', notice_days: 7 });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ restricted: true, lifts_at: '2026-03-09T10:00:00.000Z' });
    const mails = (await t.outbox()).slice(before).filter((m) => m.to === email);
    expect(mails).toHaveLength(1);
    expect(mails[0]!.subject).toMatch(/lift the restriction/);
    expect(mails[0]!.body).not.toContain('disputed');
    expect(mails[0]!.body).not.toContain(id);
    expect(codeOf(await read(id, 'account'))).toBe('POLICY_SUBJECT_RESTRICTED');
    expect((await browser(t, jar, 'GET', '/v1/me/restriction')).json()).toMatchObject({ restricted: true, lift_reason: 'The address you disputed was checked and is correct.' });
    t.clock.advance(7 * 86_400_000);
    try {
      expect((await read(id, 'account')).statusCode).toBe(200);
      expect((await call('GET', `/v1/customers/${id}/restriction`, rights)).json()).toMatchObject({ restricted: false });
    } finally {
      t.clock.advance(-7 * 86_400_000);
    }
  });

  it('a customer who cannot be told keeps the restriction; lifting none is refused', async () => {
    const { id } = await seed(t, shop);
    // A customer stored without an email address.
    await call('PATCH', `/v1/customers/${id}`, shop, { email: null });
    await call('POST', '/v1/rights/requests', rights, { kind: 'restriction', customer_id: id });
    const res = await call('POST', `/v1/customers/${id}/restriction/lift`, rights, { reason: 'Checked.', notice_days: 0 });
    expect(res.statusCode).toBe(409);
    expect(codeOf(res)).toBe('RIGHTS_RESTRICTION_NOTICE_FAILED');
    expect(codeOf(await read(id, 'account'))).toBe('POLICY_SUBJECT_RESTRICTED');
    const { id: free } = await seed(t, shop);
    expect(codeOf(await call('POST', `/v1/customers/${free}/restriction/lift`, rights, { reason: 'x' }))).toBe('RIGHTS_NOT_RESTRICTED');
  });
});
