import { createHash } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditCommand } from '../../cli/commands/audit.ts';
import type { Io } from '../../cli/io.ts';
import { buildApp } from '../../app.ts';
import { loadConfig } from '../../config/config.ts';
import { openRuntime } from '../../runtime.ts';
import { testApp, type TestApp } from '../../../test/support/app.ts';
import { TEST_DIALECT } from '../../../test/support/store.ts';
import { call, census, expectError, person } from '../../../test/vault/helpers.ts';
import { verifyReceipt } from './receipts.ts';

/**
 * The consent ledger through the API: grants and withdrawals with proof, receipts that verify,
 * the gate at reads, notice versions, refusals that record nothing, and rows bound to the audit log.
 */
const PROOF = { text_sha256: createHash('sha256').update('Yes, send me the newsletter.').digest('hex'), channel: 'checkout', at: '2026-03-02T10:00:00Z' };

let t: TestApp;
let shop: string;
let narrow: string;
let marketing: string;

async function newCustomer(): Promise<string> {
  const res = await call(t, { method: 'POST', url: '/v1/customers', auth: shop, purpose: 'account', payload: person().customer });
  expect(res.statusCode, res.body).toBe(201);
  return res.json<{ id: string }>().id;
}
const consent = (id: string, payload: Record<string, unknown>, auth = shop) => call(t, { method: 'POST', url: `/v1/customers/${id}/consents`, auth, payload });
const grant = (id: string, purpose = 'marketing', extra: Record<string, unknown> = {}) =>
  consent(id, { purpose, granted: true, source: 'web_form', notice_version: 1, proof: PROOF, ...extra });
const ledgerCount = async () => (await census(t, ['consent_ledger', 'audit_log'])) as { consent_ledger: number; audit_log: number };

beforeAll(async () => {
  t = await testApp();
  shop = await t.bearer(['account']);
  narrow = await t.bearer(['support']);
  marketing = await t.bearer(['marketing']);
});
afterAll(() => t.close());

describe(`consent ledger (${TEST_DIALECT})`, () => {
  it('records a grant with its proof and a receipt that verifies against /v1/keys/receipts; withdrawing is one call', async () => {
    const id = await newCustomer();
    const res = await grant(id);
    expect(res.statusCode, res.body).toBe(201);
    const body = res.json<{ id: string; status: string; in_force: boolean; receipt: string }>();
    expect(body).toMatchObject({ status: 'granted', in_force: true });
    const keys = await call(t, { url: '/v1/keys/receipts' });
    expect(keys.statusCode).toBe(200);
    const jwks = keys.json<{ keys: { kid: string; x: string }[] }>();
    expect(jwks.keys).toHaveLength(1);
    const checked = await call(t, { method: 'POST', url: '/v1/receipts/verify', payload: { receipt: body.receipt } });
    expect(checked.statusCode, checked.body).toBe(200);
    expect(checked.json()).toMatchObject({ valid: true, kid: jwks.keys[0]!.kid, payload: { jti: body.id, sub: id, purpose: 'marketing', status: 'granted', proof: PROOF } });

    const withdrawn = await consent(id, { purpose: 'marketing', granted: false, source: 'api', notice_version: 1 });
    expect(withdrawn.json()).toMatchObject({ status: 'withdrawn', in_force: false });
    const state = await call(t, { url: `/v1/customers/${id}/consents`, auth: shop });
    expect(state.statusCode, state.body).toBe(200);
    const s = state.json<{ purposes: { purpose: string; status: string; in_force: boolean }[]; history: unknown[]; gpc: unknown }>();
    expect(s.purposes.find((p) => p.purpose === 'marketing')).toMatchObject({ status: 'withdrawn', in_force: false });
    expect(s.purposes.map((p) => p.purpose).sort()).toEqual(['analytics', 'marketing', 'third_party_sharing']);
    expect(s.history).toHaveLength(2);
    expect(s.gpc).toEqual({ honored: false, at: null });
  });

  it('refuses bad input with a stable code and records nothing', async () => {
    const id = await newCustomer();
    const before = await ledgerCount();
    expectError(await grant(id, 'newsletter_v2'), 400, 'CONSENT_PURPOSE_UNKNOWN');
    expectError(await grant(id, 'account'), 400, 'CONSENT_PURPOSE_NOT_CONSENT_BASED');
    expectError(await grant(id, 'marketing', { notice_version: 99 }), 400, 'CONSENT_NOTICE_VERSION_UNKNOWN');
    expectError(await grant(id, 'marketing', { notice_version: 0 }), 400, 'CONSENT_NOTICE_VERSION_UNKNOWN');
    expectError(await grant(id, 'marketing', { source: 'carrier_pigeon' }), 400, 'CONSENT_SOURCE_INVALID');
    expectError(await grant(id, 'marketing', { source: 'unsubscribe_link' }), 400, 'CONSENT_SOURCE_INVALID');
    expectError(await grant(id, 'third_party_sharing', { source: 'gpc' }), 400, 'CONSENT_SOURCE_INVALID');
    expectError(await consent(id, { purpose: 'marketing', granted: false, source: 'gpc', notice_version: 1 }), 400, 'CONSENT_SOURCE_INVALID');
    expectError(await grant(id, 'marketing', { proof: { ...PROOF, text_sha256: 'abc' } }), 400, 'VAULT_FIELD_INVALID');
    expectError(await grant('cus_00000000000000000000000000'), 404, 'CONSENT_SUBJECT_NOT_FOUND');
    expect(await ledgerCount()).toEqual(before);
  });

  it('a key not scoped to account cannot record or read consents (wrong purpose)', async () => {
    const id = await newCustomer();
    const before = await ledgerCount();
    expectError(await call(t, { method: 'POST', url: `/v1/customers/${id}/consents`, payload: { purpose: 'marketing', granted: true, source: 'api', notice_version: 1 } }), 401, 'APIKEY_MISSING');
    expectError(await consent(id, { purpose: 'marketing', granted: true, source: 'api', notice_version: 1 }, narrow), 403, 'POLICY_PURPOSE_NOT_ALLOWED');
    expectError(await consent(id, { purpose: 'marketing', granted: true, source: 'api', notice_version: 1 }, marketing), 403, 'POLICY_PURPOSE_NOT_ALLOWED');
    expectError(await call(t, { url: `/v1/customers/${id}/consents`, auth: marketing }), 403, 'POLICY_PURPOSE_NOT_ALLOWED');
    expect(await ledgerCount()).toEqual(before);
  });

  it('a marketing read releases nothing without consent, and the access log says why', async () => {
    const id = await newCustomer();
    const read = () => call(t, { url: `/v1/customers/${id}`, auth: marketing, purpose: 'marketing' });
    const none = await read();
    expect(none.statusCode).toBe(200);
    expect(none.json()).not.toHaveProperty('email');
    await grant(id);
    const some = await read();
    expect(some.json()).toHaveProperty('email');
    await consent(id, { purpose: 'marketing', granted: false, source: 'api', notice_version: 1 });
    expect((await read()).json()).not.toHaveProperty('email');
    const log = await call(t, { url: `/v1/customers/${id}/access-log`, auth: shop, purpose: 'account' });
    const actions = log.json<{ data: { action: string; purpose: string; fields: string[] }[] }>().data.filter((e) => e.purpose === 'marketing');
    expect(actions.map((e) => e.action)).toEqual(['vault.read.no_consent', 'consent.withdraw', 'vault.read', 'consent.grant', 'vault.read.no_consent']);
    expect(actions[0]!.fields).toEqual([]);
  });

  it('a tampered receipt does not verify', async () => {
    const id = await newCustomer();
    const { receipt } = (await grant(id, 'analytics')).json<{ receipt: string }>();
    const [h, p, s] = receipt.split('.') as [string, string, string];
    const payload = JSON.parse(Buffer.from(p, 'base64url').toString()) as Record<string, unknown>;
    const forged = `${h}.${Buffer.from(JSON.stringify({ ...payload, purpose: 'third_party_sharing' })).toString('base64url')}.${s}`;
    const bad = [forged, `${h}.${p}.${s.slice(0, 10)}${s[10] === 'A' ? 'B' : 'A'}${s.slice(11)}`, `${h}.${p}`, 'not-a-jws', `${Buffer.from('{"alg":"none","kid":"x"}').toString('base64url')}.${p}.`];
    const codes = [];
    for (const receipt of bad) codes.push((await call(t, { method: 'POST', url: '/v1/receipts/verify', payload: { receipt } })).json<{ error?: { code: string } }>().error?.code);
    expect(codes).toEqual(bad.map(() => 'CONSENT_RECEIPT_INVALID'));
    expect((await verifyReceipt(t.runtime.consent.receipts, receipt)).payload.purpose).toBe('analytics');
  });

  it('imported grants count at the gate and are bound to audit entries; a batch naming one unknown customer or a purpose not based on consent records none of it', async () => {
    const [a, b] = [await newCustomer(), await newCustomer()];
    const ctx = { actor: { ref: 'apikey:import', kind: 'apikey' as const, purposes: ['account'] }, requestId: 'req-import' };
    const before = await ledgerCount();
    const refused = async (grants: Parameters<typeof t.runtime.consent.importGrants>[1], code: string) => {
      await expect(t.runtime.consent.importGrants(ctx, grants)).rejects.toMatchObject({ code });
      expect(await ledgerCount()).toEqual(before);
    };
    await refused([{ subjectId: a, purpose: 'marketing', noticeVersion: 1 }, { subjectId: 'cus_01JZZZZZZZZZZZZZZZZZZZZZZZ', purpose: 'marketing', noticeVersion: 1 }], 'CONSENT_SUBJECT_NOT_FOUND');
    await refused([{ subjectId: a, purpose: 'marketing', noticeVersion: 1 }, { subjectId: b, purpose: 'account', noticeVersion: 1 }], 'CONSENT_PURPOSE_NOT_CONSENT_BASED');
    await refused([{ subjectId: a, purpose: 'marketing', noticeVersion: 99 }], 'CONSENT_NOTICE_VERSION_UNKNOWN');
    expect(await t.runtime.consent.importGrants(ctx, [a, b].map((subjectId) => ({ subjectId, purpose: 'marketing', noticeVersion: 1 })))).toBe(2);
    expect(await ledgerCount()).toEqual({ consent_ledger: before.consent_ledger + 2, audit_log: before.audit_log + 2 });
    expect(await t.runtime.consent.gate.permits(a, 'marketing')).toBe(true);
    const state = (await call(t, { url: `/v1/customers/${b}/consents`, auth: shop })).json<{ history: { source: string; status: string }[] }>();
    expect(state.history).toMatchObject([{ source: 'import', status: 'granted' }]);
    expect(await t.runtime.consent.verifyLedger()).toEqual([]);
  });

  it('custos audit verify names ledger rows that were edited, inserted or deleted in the database', async () => {
    const id = await newCustomer();
    const a = (await grant(id, 'marketing')).json<{ id: string }>().id;
    const b = (await consent(id, { purpose: 'analytics', granted: false, source: 'api', notice_version: 1 })).json<{ id: string }>().id;
    const verify = async () => {
      const out: string[] = [];
      const io: Io = { out: (l) => void out.push(l), err: () => undefined, progress: () => undefined, done: () => undefined };
      return { code: await auditCommand(t.runtime, ['verify'], io), out };
    };
    expect((await verify()).code).toBe(0);
    const { db } = t.runtime.store;
    await sql`UPDATE consent_ledger SET status = 'granted' WHERE id = ${b}`.execute(db);
    await sql`DELETE FROM consent_ledger WHERE id = ${a}`.execute(db);
    const broken = await verify();
    expect(broken.code).toBe(1);
    expect(broken.out.join('\n')).toContain(`consent ledger BROKEN at row ${b}: the ledger row does not match its MAC`);
    expect(broken.out.join('\n')).toContain(`consent ledger BROKEN at row ${a}: the ledger row of this audit entry is missing`);
    // The edited withdrawal does not turn into a grant: the gate reads it, but so does verify; put it back.
    await sql`UPDATE consent_ledger SET status = 'withdrawn' WHERE id = ${b}`.execute(db);
  });
});

describe(`notice versions (${TEST_DIALECT})`, () => {
  it('a changed marketing notice voids earlier marketing consents until confirmed; other purposes keep theirs', async () => {
    const local = await testApp();
    try {
      const auth = await local.bearer(['account', 'marketing', 'analytics']);
      const created = await call(local, { method: 'POST', url: '/v1/customers', auth, purpose: 'account', payload: person().customer });
      const id = created.json<{ id: string }>().id;
      for (const purpose of ['marketing', 'analytics'])
        expect((await call(local, { method: 'POST', url: `/v1/customers/${id}/consents`, auth, payload: { purpose, granted: true, source: 'web_form', notice_version: 1 } })).statusCode).toBe(201);
      const file = join(local.db.dir, 'shop-inventory.yaml');
      writeFileSync(file, 'version: 1\nextends: default\npurposes:\n  marketing:\n    description:\n      en: Newsletters, offers and partner offers.\n      de: Newsletter, Angebote und Partnerangebote.\n');
      const runtime = await openRuntime(loadConfig({ ...local.env, CUSTOS_INVENTORY: file }));
      const app = await buildApp(runtime);
      try {
        expect(runtime.consent.notices.current()).toBe(2);
        const inject = (url: string, purpose?: string) => app.inject({ url, headers: { authorization: auth, ...(purpose === undefined ? {} : { 'custos-purpose': purpose }) } });
        const state = (await inject(`/v1/customers/${id}/consents`)).json<{ notice_version: number; purposes: { purpose: string; in_force: boolean; needs_confirmation: boolean; changed_in: number }[] }>();
        expect(state.notice_version).toBe(2);
        expect(state.purposes.find((p) => p.purpose === 'marketing')).toMatchObject({ in_force: false, needs_confirmation: true, changed_in: 2 });
        expect(state.purposes.find((p) => p.purpose === 'analytics')).toMatchObject({ in_force: true, needs_confirmation: false, changed_in: 1 });
        expect((await inject(`/v1/customers/${id}`, 'marketing')).json()).not.toHaveProperty('email');
        const confirmed = await app.inject({ method: 'POST', url: `/v1/customers/${id}/consents`, headers: { authorization: auth }, payload: { purpose: 'marketing', granted: true, source: 'web_form', notice_version: 2 } });
        expect(confirmed.json()).toMatchObject({ in_force: true });
        expect((await inject(`/v1/customers/${id}`, 'marketing')).json()).toHaveProperty('email');
      } finally {
        await app.close();
        await runtime.close();
      }
    } finally {
      await local.close();
    }
  });
});
