import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { staffFixture, type StaffFixture } from '../../src/modules/staff/test-support/fixture.ts';
import { testApp, type TestApp } from '../support/app.ts';
import { apiKey, call, person, seed } from './helpers.ts';

/**
 * Lookups answer only with customers that really hold the value and that the caller may see:
 * the opened value is compared with the query (an edited blind-index row cannot substitute
 * another customer), and a customer a guard refuses is left out like a non-match.
 */
describe('a lookup re-checks what the blind index found', () => {
  let t: TestApp;
  let key: { auth: string; id: string };
  beforeAll(async () => {
    t = await testApp();
    key = await apiKey(t, ['account', 'fulfilment']);
  });
  afterAll(async () => t.close());

  // Attack: someone with write access to the database points the blind-index row of another
  // customer's email at a digest they can query, so a lookup by one email returns a second person.
  it('an edited blind-index row does not bring another customer into a lookup; the mismatch is an integrity event', async () => {
    const a = await seed(t, key.auth, person());
    const b = await seed(t, key.auth, person());
    const { db } = t.runtime.store;
    const digestOf = async (id: string) =>
      (await db.selectFrom('blind_indexes').select('digest').where('record_id', '=', id).where('field', '=', 'email').executeTakeFirstOrThrow()).digest;
    // One email digest names one record (a unique index), so the edit repoints a's row at b.
    await sql`UPDATE blind_indexes SET record_id = ${b.id} WHERE digest = ${await digestOf(a.id)} AND field = 'email'`.execute(db);

    const res = await call(t, { url: `/v1/customers?email=${encodeURIComponent(a.p.customer.email)}`, auth: key.auth, purpose: 'fulfilment' });
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json<{ data: { id: string }[] }>().data.map((c) => c.id)).toEqual([]);
    expect(res.body).not.toContain(b.p.customer.name);

    const entries = await t.runtime.audit.forSubject(b.id, { limit: 50 });
    const event = entries.find((e) => e.action === 'vault.integrity.blind_index_mismatch');
    expect(event).toMatchObject({ collection: 'customers', recordId: b.id, fields: ['email'], outcome: 'failure', purpose: 'fulfilment' });
    expect(entries.some((e) => e.action === 'vault.lookup')).toBe(false);
    expect(JSON.stringify(entries)).not.toContain(a.p.customer.email);
  });
});

describe('staff lookups skip customers the guard refuses', () => {
  let f: StaffFixture;
  beforeAll(async () => {
    f = await staffFixture();
  });
  afterAll(() => f.close());

  // Attack: a staff member whose access is refused (no second factor) probes emails: a 403 for a
  // stored email and an empty answer for an unknown one would tell which emails are customers'.
  it('a refused staff member gets the same empty answer for a stored email as for an unknown one', async () => {
    await f.customer({ email: 'grace@example.org', name: 'Grace Hopper' });
    const agent = await f.member('support_agent', { mfa: false });
    const actor = await f.staff.actorFor(agent.id);
    const find = (email: string) => f.vault.findCustomers({ actor, purpose: 'support', requestId: 'r' }, { email });
    expect(await find('grace@example.org')).toEqual([]);
    expect(await find('nobody@example.org')).toEqual([]);
    await f.enrolTotp(agent.accountId);
    expect((await find('grace@example.org')).map((c) => c.name)).toEqual(['Grace Hopper']);
  });
});
