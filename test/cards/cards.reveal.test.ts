import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_OPERATOR } from '../../src/modules/staff/ports.ts';
import { authApp, browser, CookieJar, enrolTotp, signIn, staffMember, STRONG, type AuthTest } from '../identity/helpers.ts';
import { TEST_DIALECT } from '../support/store.ts';
import { call, expectError } from '../vault/helpers.ts';

/**
 * Reveal of the full PAN: only staff holding cards.reveal (no built-in role has it), with a fresh
 * step-up and a reason; audited (allowed and refused) and flagged to security officers. No API
 * key, whatever its purposes, reaches it.
 */
const PAN = '6011111111111117';

describe(`card reveal (${TEST_DIALECT})`, () => {
  let t: AuthTest;
  let token: string;
  const today = () => t.clock.now().toISOString().slice(0, 10);
  const reveal = (jar: CookieJar, reason = 'customer disputes a charge, ticket 4711') => browser(t, jar, 'POST', `/v1/staff/cards/${token}/reveal`, { reason });
  const signedIn = async (role: string) => {
    const { email, memberId } = await staffMember(t, role, { trainedOn: today() });
    const { jar } = await signIn(t, email, STRONG, new CookieJar(), '/v1/staff/auth');
    await enrolTotp(t, jar, '/v1/staff/auth');
    return { jar, memberId };
  };

  beforeAll(async () => {
    t = await authApp();
    const payments = await t.bearer(['payments']);
    const res = await call(t, { method: 'POST', url: '/v1/cards', auth: payments, purpose: 'payments', payload: { pan: PAN, exp_month: 1, exp_year: 2030 } });
    expect(res.statusCode, res.body).toBe(201);
    token = res.json<{ token: string }>().token;
    const defined = await t.runtime.staff.roles.define(CLI_OPERATOR, { name: 'card_revealer', purposes: ['payments'], permissions: ['cards.reveal'] });
    if (defined.pending !== undefined) await t.runtime.staff.roles.approve(CLI_OPERATOR, defined.pending.id);
  });
  afterAll(async () => t?.close());

  it('no API key can reveal a PAN, not even one scoped to payments', async () => {
    const payments = await t.bearer(['payments', 'account', 'support', 'fraud_prevention']);
    const res = await call(t, { method: 'POST', url: `/v1/staff/cards/${token}/reveal`, auth: payments, payload: { reason: 'trying with an api key here' } });
    expect(res.statusCode).toBe(401);
    expect(res.body).not.toContain(PAN);
  });

  it('staff of a built-in role (security officer) cannot reveal: cards.reveal is granted by no built-in role', async () => {
    for (const role of ['security_officer', 'privacy_officer', 'admin']) {
      const { jar } = await signedIn(role);
      const res = await reveal(jar);
      expectError(res, 403, 'STAFF_PERMISSION_DENIED');
      expect(res.body).not.toContain(PAN);
    }
  });

  it('a holder of cards.reveal past the step-up window must step up first; then sees the PAN, audited with a sealed reason', async () => {
    const { jar, memberId } = await signedIn('card_revealer');
    t.clock.advance(10 * 60_000);
    const stale = await reveal(jar);
    expectError(stale, 401, 'IDENTITY_REAUTH_REQUIRED');
    expect(stale.body).not.toContain(PAN);
    const up = await browser(t, jar, 'POST', '/v1/staff/auth/step-up', { password: STRONG });
    expect(up.statusCode, up.body).toBe(200);
    const res = await reveal(jar);
    expect(res.statusCode, res.body).toBe(200);
    expect(res.json()).toMatchObject({ token, pan: PAN });
    await t.runtime.audit.chainPending();
    const entries = await t.runtime.store.db.selectFrom('audit_log').select(['actor', 'outcome', 'fields', 'purpose']).where('action', '=', 'cards.reveal').execute();
    expect(entries).toContainEqual(expect.objectContaining({ actor: `staff:${memberId}`, outcome: 'success', purpose: 'payments' }));
    expect(entries.filter((e) => e.outcome === 'denied').length).toBeGreaterThanOrEqual(4);
    const kept = await t.runtime.store.db.selectFrom('card_reveals').selectAll().where('member_id', '=', memberId).execute();
    expect(kept).toHaveLength(1);
    expect(kept[0]!.reason).not.toContain('disputes');
    // Flagged to the security officers (holders of incidents.manage) by mail, ids only.
    const flagged = (await t.outbox()).filter((m) => m.subject === 'Custos: a card number was revealed');
    expect(flagged.length).toBeGreaterThanOrEqual(1);
    for (const m of flagged) expect(m.body).not.toContain(PAN);
  });

  it('a reason is required', async () => {
    const { jar } = await signedIn('card_revealer');
    expect((await browser(t, jar, 'POST', `/v1/staff/cards/${token}/reveal`, {})).statusCode).toBe(400);
  });
});
