import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authApp, browser, codeOf, customer, enrolTotp, SAME_ORIGIN, signIn, STRONG, tokenIn, uniqueEmail, withoutRequestId, type AuthTest } from './helpers.ts';

/**
 * One person, one record, from the customer's side: sign-up makes no vault record before the
 * address is verified, verification links the account to the customer the shop stored with that
 * address, an address signed up by someone who cannot read its mail blocks nobody, and a shop can
 * invite a stored customer to claim their account.
 */
let t: AuthTest;
let shop: string;
beforeAll(async () => {
  t = await authApp();
  shop = await t.bearer(['account', 'fulfilment']);
});
afterAll(async () => t.close());

const OTHER = 'rowing boats drift past the old mill';
const signup = (email: string, password = STRONG) => t.app.inject({ method: 'POST', url: '/v1/auth/signup', headers: SAME_ORIGIN, payload: { email, password } });
const verify = (token: string) => t.app.inject({ method: 'POST', url: '/v1/auth/verify-email', headers: SAME_ORIGIN, payload: { token } });
const claim = (token: string, password = STRONG) => t.app.inject({ method: 'POST', url: '/v1/auth/claim', headers: SAME_ORIGIN, payload: { token, password } });
const invite = (id: string, auth = shop) => t.app.inject({ method: 'POST', url: `/v1/customers/${id}/invitation`, headers: { authorization: auth } });
const mailsTo = async (email: string, subject: RegExp) => (await t.outbox()).filter((m) => m.to === email && subject.test(m.subject));
const lastLink = async (email: string, subject: RegExp) => tokenIn((await mailsTo(email, subject)).at(-1)!.body);
const customerRecords = async () =>
  Number((await sql<{ n: number | string }>`SELECT count(*) AS n FROM records WHERE collection = 'customers'`.execute(t.runtime.store.db)).rows[0]!.n);

/** A customer the shop stored, with one order. */
async function stored(email: string): Promise<string> {
  const created = await t.app.inject({ method: 'POST', url: '/v1/customers', headers: { authorization: shop }, payload: { email, name: 'Ines Varga-Holm' } });
  expect(created.statusCode).toBe(201);
  const id = created.json<{ id: string }>().id;
  const order = { number: `SO-${id.slice(-6)}`, placed_at: '2026-01-05T10:00:00Z', currency: 'EUR', total: '42.00', status: 'paid' };
  expect((await t.app.inject({ method: 'POST', url: `/v1/customers/${id}/orders`, headers: { authorization: shop }, payload: order })).statusCode).toBe(201);
  return id;
}

describe('sign-up and verification link the shop’s record', () => {
  it('a stored customer who signs up and verifies sees the shop’s profile, orders and access log (no second, empty record)', async () => {
    const email = uniqueEmail('ines');
    const id = await stored(email);
    const before = await customerRecords();
    expect((await signup(email.toUpperCase())).statusCode).toBe(202);
    expect((await verify(await lastLink(email, /Confirm/))).statusCode).toBe(200);
    const { jar } = await signIn(t, email);
    const me = await browser(t, jar, 'GET', '/v1/me');
    expect(me.json()).toMatchObject({ id, email, name: 'Ines Varga-Holm' });
    const orders = await browser(t, jar, 'GET', '/v1/me/orders');
    expect(orders.json<{ data: { customer_id: string }[] }>().data).toHaveLength(1);
    const log = await browser(t, jar, 'GET', '/v1/me/access-log');
    expect(log.json<{ data: { action: string }[] }>().data.some((e) => e.action === 'vault.create')).toBe(true);
    expect(await customerRecords()).toBe(before);
  });

  it('sign-up makes no vault record; an unverified account reaches no customer data (403) until verified', async () => {
    const email = uniqueEmail();
    const before = await customerRecords();
    expect((await signup(email)).statusCode).toBe(202);
    const { jar } = await signIn(t, email);
    expect(codeOf(await browser(t, jar, 'GET', '/v1/me'))).toBe('IDENTITY_EMAIL_UNVERIFIED');
    expect(codeOf(await browser(t, jar, 'GET', '/v1/me/orders'))).toBe('IDENTITY_EMAIL_UNVERIFIED');
    expect(await customerRecords()).toBe(before);
    expect((await verify(await lastLink(email, /Confirm/))).statusCode).toBe(200);
    expect(await customerRecords()).toBe(before + 1);
    expect((await browser(t, jar, 'GET', '/v1/me')).json()).toMatchObject({ email });
  });

  it('verification racing the shop’s create of the same address ends on one record, linked', async () => {
    const email = uniqueEmail();
    await signup(email);
    const token = await lastLink(email, /Confirm/);
    const create = t.app.inject({ method: 'POST', url: '/v1/customers', headers: { authorization: shop }, payload: { email, name: 'Racing Shop Record' } });
    const [verified, created] = await Promise.all([verify(token), create]);
    expect(verified.statusCode).toBe(200);
    expect([201, 409]).toContain(created.statusCode);
    const found = await t.app.inject({ method: 'GET', url: `/v1/customers?email=${encodeURIComponent(email)}`, headers: { authorization: shop, 'custos-purpose': 'account' } });
    const ids = found.json<{ data: { id: string }[] }>().data.map((c) => c.id);
    expect(ids).toHaveLength(1);
    const { jar } = await signIn(t, email);
    expect((await browser(t, jar, 'GET', '/v1/me')).json()).toMatchObject({ id: ids[0] });
  });

  it('a verification link replayed is refused and changes nothing', async () => {
    const email = uniqueEmail();
    await signup(email);
    const token = await lastLink(email, /Confirm/);
    expect((await verify(token)).statusCode).toBe(200);
    const records = await customerRecords();
    expect(codeOf(await verify(token))).toBe('IDENTITY_TOKEN_REUSED');
    expect(await customerRecords()).toBe(records);
  });
});

describe('squatting an address', () => {
  it('a sign-up never verified blocks neither the shop nor the owner; the squatter’s password, session and link stop working', async () => {
    const email = uniqueEmail('owner');
    expect((await signup(email, OTHER)).statusCode).toBe(202); // the squatter
    const squatterLink = await lastLink(email, /Confirm/);
    const { jar: squatter } = await signIn(t, email, OTHER);
    expect((await browser(t, squatter, 'GET', '/v1/auth/session')).statusCode).toBe(200);
    // The shop can still store the customer: the squat holds no vault record.
    const id = await stored(email);
    // The owner signs up and verifies with their own link.
    expect((await signup(email)).statusCode).toBe(202);
    const ownerLink = await lastLink(email, /Confirm/);
    expect(ownerLink).not.toBe(squatterLink);
    expect(codeOf(await verify(squatterLink))).toBe('IDENTITY_TOKEN_INVALID');
    expect((await verify(ownerLink)).statusCode).toBe(200);
    expect((await browser(t, squatter, 'GET', '/v1/me')).statusCode).toBe(401);
    expect((await signIn(t, email, OTHER)).res.statusCode).toBe(401);
    const { jar } = await signIn(t, email);
    expect((await browser(t, jar, 'GET', '/v1/me')).json()).toMatchObject({ id });
    // Signing up again now changes nothing: the owner is mailed instead.
    expect((await signup(email, OTHER)).statusCode).toBe(202);
    expect((await signIn(t, email, OTHER)).res.statusCode).toBe(401);
    expect((await mailsTo(email, /account$/)).filter((m) => /already has one/.test(m.body))).toHaveLength(1);
  });

  it('a squatter’s second factor does not survive the owner’s sign-up', async () => {
    const email = uniqueEmail('owner');
    await signup(email, OTHER);
    const { jar: squatter } = await signIn(t, email, OTHER);
    await enrolTotp(t, squatter);
    await signup(email);
    await verify(await lastLink(email, /Confirm/));
    const owner = await signIn(t, email);
    expect(owner.res.json()).toMatchObject({ mfa_required: false });
  });
});

describe('sign-up enumeration', () => {
  it('a new, a pending and a verified address answer alike, hash the password once each, write no vault record and each get a mail', async () => {
    const verified = await customer(t);
    const pending = uniqueEmail();
    await signup(pending, OTHER);
    const fresh = uniqueEmail();
    const passwords = t.runtime.identity.passwords;
    const hashNew = passwords.hashNew.bind(passwords);
    let hashes = 0;
    passwords.hashNew = async (...args) => {
      hashes++;
      return hashNew(...args);
    };
    try {
      const counts: number[] = [];
      const answers: string[] = [];
      for (const email of [fresh, pending, verified]) {
        const before = hashes;
        const mails = (await mailsTo(email, /./)).length;
        const records = await customerRecords();
        const res = await signup(email, 'fog lifts slowly over the harbour');
        expect(res.statusCode).toBe(202);
        expect(await customerRecords()).toBe(records);
        answers.push(withoutRequestId(res));
        counts.push(hashes - before);
        expect((await mailsTo(email, /./)).length).toBe(mails + 1);
      }
      expect(new Set(answers).size).toBe(1);
      expect(counts).toEqual([1, 1, 1]);
    } finally {
      passwords.hashNew = hashNew;
    }
  });
});

describe('a shop invites a stored customer to claim the account', () => {
  it('invitation → mail with /account/claim#token= → claim sets the password and links the shop’s record; the link works once', async () => {
    const email = uniqueEmail('claim');
    const id = await stored(email);
    const res = await invite(id);
    expect(res.statusCode).toBe(202);
    const expires = Date.parse(res.json<{ expires_at: string }>().expires_at);
    expect(expires - t.clock.now().getTime()).toBe(72 * 3_600_000);
    const mail = (await mailsTo(email, /claim/)).at(-1)!;
    expect(mail.body).toContain('https://shop.example/account/claim#token=');
    const token = tokenIn(mail.body);
    // The link is stored only as a keyed hash.
    const rows = await sql<Record<string, unknown>>`SELECT * FROM identity_claims`.execute(t.runtime.store.db);
    expect(JSON.stringify(rows.rows)).not.toContain(token.split('.')[1]);
    expect(JSON.stringify(rows.rows)).not.toContain(email);
    // A weak password is refused without spending the link.
    expect(codeOf(await claim(token, 'short'))).toBe('IDENTITY_PASSWORD_TOO_SHORT');
    expect(codeOf(await claim(token, 'claim everything at acme outdoor'))).toBe('IDENTITY_PASSWORD_CONTEXT');
    const claimed = await claim(token);
    expect(claimed.statusCode).toBe(200);
    expect(claimed.headers['set-cookie']).toBeUndefined();
    expect(codeOf(await claim(token, OTHER))).toBe('IDENTITY_TOKEN_REUSED');
    const { res: signedIn, jar } = await signIn(t, email);
    expect(signedIn.statusCode).toBe(200);
    expect((await browser(t, jar, 'GET', '/v1/auth/session')).json()).toMatchObject({ account: { email_verified: true } });
    expect((await browser(t, jar, 'GET', '/v1/me')).json()).toMatchObject({ id, email });
    const log = await t.app.inject({ method: 'GET', url: `/v1/customers/${id}/access-log`, headers: { authorization: shop, 'custos-purpose': 'account' } });
    const actions = log.json<{ data: { action: string; fields: string[] }[] }>().data.map((e) => e.action);
    expect(actions).toContain('identity.authn_token_created');
  });

  it('a retried invitation with the same Idempotency-Key sends one mail and answers the same', async () => {
    const email = uniqueEmail('retry');
    const id = await stored(email);
    const send = () => t.app.inject({ method: 'POST', url: `/v1/customers/${id}/invitation`, headers: { authorization: shop, 'idempotency-key': `invite-${id}` } });
    const first = await send();
    expect(first.statusCode, first.body).toBe(202);
    const again = await send();
    expect(again.statusCode).toBe(202);
    expect(again.json()).toEqual(first.json());
    expect(again.headers['idempotent-replayed']).toBe('true');
    expect(await mailsTo(email, /claim/)).toHaveLength(1);
    // The one link mailed is the live one: the replay superseded nothing.
    expect((await claim(await lastLink(email, /claim/))).statusCode).toBe(200);
  });

  it('a key without purpose account cannot send invitations (refused, audited)', async () => {
    const id = await stored(uniqueEmail());
    const fulfilment = await t.bearer(['fulfilment']);
    const res = await invite(id, fulfilment);
    expect(res.statusCode).toBe(403);
    expect(codeOf(res)).toBe('POLICY_PURPOSE_NOT_ALLOWED');
    const log = await t.app.inject({ method: 'GET', url: `/v1/customers/${id}/access-log`, headers: { authorization: shop, 'custos-purpose': 'account' } });
    expect(log.json<{ data: { action: string; outcome: string }[] }>().data).toContainEqual(expect.objectContaining({ action: 'identity.authn_token_created', outcome: 'denied' }));
  });

  it('an expired link, a superseded link and a link for an address the customer no longer holds are refused', async () => {
    const email = uniqueEmail();
    const id = await stored(email);
    await invite(id);
    const first = await lastLink(email, /claim/);
    await invite(id);
    const second = await lastLink(email, /claim/);
    expect(codeOf(await claim(first))).toBe('IDENTITY_TOKEN_INVALID');
    t.clock.advance(72 * 3_600_000 + 1000);
    expect(codeOf(await claim(second))).toBe('IDENTITY_TOKEN_INVALID');
    await invite(id);
    const third = await lastLink(email, /claim/);
    const moved = await t.app.inject({ method: 'PATCH', url: `/v1/customers/${id}`, headers: { authorization: shop }, payload: { email: uniqueEmail() } });
    expect(moved.statusCode).toBe(200);
    expect(codeOf(await claim(third))).toBe('IDENTITY_TOKEN_INVALID');
  });

  it('claiming over a squatter’s unverified sign-up takes the account from the squatter', async () => {
    const email = uniqueEmail();
    const id = await stored(email);
    await signup(email, OTHER);
    const squatterLink = await lastLink(email, /Confirm/);
    const { jar: squatter } = await signIn(t, email, OTHER);
    await invite(id);
    expect((await claim(await lastLink(email, /claim/))).statusCode).toBe(200);
    expect((await browser(t, squatter, 'GET', '/v1/me')).statusCode).toBe(401);
    expect((await signIn(t, email, OTHER)).res.statusCode).toBe(401);
    expect(codeOf(await verify(squatterLink))).toBe('IDENTITY_TOKEN_INVALID');
    const { jar } = await signIn(t, email);
    expect((await browser(t, jar, 'GET', '/v1/me')).json()).toMatchObject({ id });
  });
});
