/**
 * The checks that read the database, each provoked on a real vault (SQLite and PostgreSQL) and
 * seen to pass again once fixed: a tampered audit row fails (an intruder covering their tracks);
 * keys past the rotation policy warn; staff without a second factor, with a session that has none,
 * or without current training warn; an API key unused for 90 days warns until it is used again;
 * records kept past their retention warn, then fail; request deadlines warn, then fail. And
 * GET /v1/security/posture: only for staff holding incidents.manage, audited, the same shape.
 */
import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import * as m0019 from '../../store/migrations/0019-apikey-last-used.ts';
import { browser, CookieJar, enrolTotp, signIn, staffMember, STRONG, type AuthTest } from '../../../test/identity/helpers.ts';
import { apiCall, rightsApp } from '../../../test/rights/helpers.ts';
import { TEST_DIALECT } from '../../../test/support/store.ts';
import { seed } from '../../../test/vault/helpers.ts';
import { CLI_OPERATOR } from '../staff/ports.ts';
import type { CheckResult, CheckStatus } from './finding.ts';
import { POSTURE_REUSE_MS, runPosture, type PostureOptions } from './service.ts';

const START = new Date('2026-03-02T10:00:00.000Z');
const DAY = 86_400_000;
let t: AuthTest;
let shop: string;
let rightsKey: string;

beforeAll(async () => {
  ({ t, shop, rights: rightsKey } = await rightsApp());
});
afterAll(async () => t?.close());

/** The database checks of one run, by id (no probe, no npm audit). */
async function checks(options: Pick<PostureOptions, 'isDecoyApiKey' | 'onAuditBroken'> = {}): Promise<Record<string, CheckResult>> {
  const report = await runPosture({ config: t.runtime.config, now: t.clock.now(), ci: false, cwd: t.db.dir, vault: { runtime: t.runtime }, ...options });
  return Object.fromEntries(report.checks.map((c) => [c.id, c]));
}
const expectCheck = (c: CheckResult | undefined, status: CheckStatus, summary?: RegExp) => {
  expect(c?.status, c?.summary).toBe(status);
  if (summary !== undefined) expect(c?.summary).toMatch(summary);
  expect(c?.fix === null).toBe(status === 'pass');
};

describe(`posture: database checks (${TEST_DIALECT})`, () => {
  it('a fresh vault passes every database check', async () => {
    const c = await checks();
    for (const id of ['keys.age', 'audit.verify', 'staff.mfa', 'staff.sessions', 'staff.training', 'apikeys.unused', 'retention.overdue', 'rights.deadlines']) expectCheck(c[id], 'pass');
    expect(c['database']).toBeUndefined();
  });

  it('a tampered audit row fails audit.verify, naming the entry; restored, it passes', async () => {
    await seed(t, shop);
    await t.runtime.audit.chainPending();
    expectCheck((await checks())['audit.verify'], 'pass', /audit log intact: Merkle tree of \d+ leaves/);
    const db = t.runtime.store.db;
    const row = await db.selectFrom('audit_log').select(['id', 'purpose']).where('action', '=', 'vault.create').orderBy('id').executeTakeFirstOrThrow();
    await db.updateTable('audit_log').set({ purpose: 'marketing' }).where('id', '=', row.id).execute();
    const told: string[] = [];
    const broken = (await checks({ onAuditBroken: (check) => void told.push(check) }))['audit.verify'];
    expectCheck(broken, 'fail', new RegExp(`audit tree BROKEN at leaf \\d+, entry ${row.id}: the entry does not match its MAC`));
    expect(told).toEqual(['tree']);
    expect(broken?.fix).toMatch(/possible breach/);
    await db.updateTable('audit_log').set({ purpose: row.purpose }).where('id', '=', row.id).execute();
    expectCheck((await checks())['audit.verify'], 'pass');
  });

  it('keys older than the rotation policy warn, naming each; a rotated KEK is no longer named', async () => {
    t.clock.set(new Date(START.getTime() + 400 * DAY));
    try {
      const old = (await checks())['keys.age'];
      expectCheck(old, 'warn', /KEK v1 is 400 days old/);
      expect(old?.summary).toMatch(/past the rotation policy of 365 days/);
      expect(old?.fix).toMatch(/custos keys rotate/);
      expect(old?.summary).not.toMatch(/blind-index/);
      await t.runtime.keys.addKekVersion();
      const rotated = (await checks())['keys.age'];
      expect(rotated?.summary).not.toMatch(/KEK/);
      expectCheck(rotated, 'warn', /service key audit-mac v1 is 400 days old/);
    } finally {
      t.clock.set(START);
    }
  });

  it('staff without a second factor, a session without one, and missing or expired training warn; fixed, they pass', async () => {
    const { email, memberId } = await staffMember(t, 'support_agent');
    const { jar } = await signIn(t, email, STRONG, new CookieJar(), '/v1/staff/auth');
    let c = await checks();
    expectCheck(c['staff.mfa'], 'warn', new RegExp(`1 active staff member without a second factor: ${memberId}`));
    expectCheck(c['staff.sessions'], 'warn', new RegExp(`1 live staff session without a verified second factor \\(members ${memberId}\\)`));
    expectCheck(c['staff.training'], 'warn', new RegExp(`without a required course: ${memberId}`));
    expect(JSON.stringify(c)).not.toContain(email);

    await enrolTotp(t, jar, '/v1/staff/auth');
    await t.runtime.staff.training.recordCompletion(CLI_OPERATOR, { memberId, course: 'security_awareness', completedOn: '2025-01-15' });
    c = await checks();
    expectCheck(c['staff.mfa'], 'pass');
    expectCheck(c['staff.sessions'], 'pass', /1 live staff session, each with a verified second factor/);
    expectCheck(c['staff.training'], 'warn', new RegExp(`with expired training: ${memberId}`));
    await t.runtime.staff.training.recordCompletion(CLI_OPERATOR, { memberId, course: 'security_awareness', completedOn: t.clock.now().toISOString().slice(0, 10) });
    expectCheck((await checks())['staff.training'], 'pass');
  });

  it('an API key unused for 90 days warns until it is used; its use is written at most once an hour; decoys and revoked keys are left out', async () => {
    const { key, info } = await t.runtime.apiKeys.create({ name: 'old storefront', purposes: ['account'] });
    const revoked = await t.runtime.apiKeys.create({ name: 'gone', purposes: ['account'] });
    await t.runtime.apiKeys.revoke(revoked.info.id);
    const decoy = await t.runtime.apiKeys.create({ name: 'decoy', purposes: ['account'] });
    const lastUsed = async () => (await t.runtime.apiKeys.list()).find((k) => k.id === info.id)?.last_used_at;
    const use = async () => {
      const res = await t.app.inject({ method: 'GET', url: '/v1/customers/cus_00000000000000000000000001', headers: { authorization: `Bearer ${key.reveal()}`, 'custos-purpose': 'account' } });
      expect(res.statusCode).toBe(404);
    };
    t.clock.set(new Date(START.getTime() + 91 * DAY));
    try {
      const idle = (await checks({ isDecoyApiKey: (id) => id === decoy.info.id }))['apikeys.unused'];
      expectCheck(idle, 'warn', new RegExp(`${info.id} \\(old storefront, last used never\\)`));
      expect(idle?.summary).not.toContain(revoked.info.id);
      expect(idle?.summary).not.toContain(decoy.info.id);
      expect(idle?.summary).not.toContain(key.reveal());

      await use();
      await vi.waitFor(async () => expect(await lastUsed()).toBe(t.clock.now().toISOString()));
      const first = await lastUsed();
      expect((await checks())['apikeys.unused']?.summary).not.toContain(info.id);

      // Within the hour: no second write.
      t.clock.advance(30 * 60_000);
      await use();
      await t.runtime.apiKeys.close();
      expect(await lastUsed()).toBe(first);
      // An hour on: written again.
      t.clock.advance(31 * 60_000);
      await use();
      await vi.waitFor(async () => expect(await lastUsed()).toBe(t.clock.now().toISOString()));
    } finally {
      t.clock.set(START);
    }
  });

  it('migration 0019 starts each existing key from its newest audit entry, in one pass over the log', async () => {
    const used = await t.runtime.apiKeys.create({ name: 'before the column', purposes: ['account'] });
    const unused = await t.runtime.apiKeys.create({ name: 'never seen', purposes: ['account'] });
    for (const minutes of [5, 90]) {
      t.clock.set(new Date(START.getTime() + minutes * 60_000));
      await t.runtime.audit.append({ actor: `apikey:${used.info.id}`, action: 'vault.read', fields: [], outcome: 'success' });
    }
    t.clock.set(START);
    const db = t.runtime.store.db;
    await sql`ALTER TABLE api_keys DROP COLUMN last_used_at`.execute(db);
    const report = await m0019.up(db as never, t.runtime.store.dialect);
    expect(report?.api_keys_last_used_backfilled).toBeGreaterThanOrEqual(1);
    const rows = await db.selectFrom('api_keys').select(['id', 'last_used_at']).where('id', 'in', [used.info.id, unused.info.id]).execute();
    expect(Object.fromEntries(rows.map((r) => [r.id, r.last_used_at]))).toEqual({
      [used.info.id]: new Date(START.getTime() + 90 * 60_000).toISOString(),
      [unused.info.id]: null,
    });
  });

  it('records past their retention warn a day late and fail 30 days late; request deadlines warn when near and fail when past', async () => {
    const call = apiCall(t);
    const { id } = await seed(t, shop);
    expect((await call('DELETE', `/v1/customers/${id}`, rightsKey)).statusCode).toBe(202);
    // The erasure runs behind the answer; it completes (and its request closes) before the checks.
    await t.runtime.erasure.idle();
    const open = await t.runtime.rights.create({ actor: { ref: 'system:test', kind: 'system', purposes: [] }, requestId: 'r1' }, { kind: 'access', customerId: (await seed(t, shop)).id, channel: 'staff', verification: 'in_person' });
    try {
      expectCheck((await checks())['rights.deadlines'], 'pass', /1 open data-subject request, none due within 7 days/);
      t.clock.set(new Date(Date.parse(open.due_at) - 3 * DAY));
      expectCheck((await checks())['rights.deadlines'], 'warn', new RegExp(`1 request due within 7 days: ${open.id}`));
      t.clock.set(new Date(Date.parse(open.due_at) + DAY));
      const late = (await checks())['rights.deadlines'];
      expectCheck(late, 'fail', new RegExp(`1 data-subject request past the deadline: ${open.id} \\(due ${open.due_on}\\)`));

      // The erasure's request record is kept 24 months after it closed (CCPA regulations 7101).
      t.clock.set(new Date('2028-03-05T10:00:00Z'));
      expectCheck((await checks())['retention.overdue'], 'warn', /^still stored after their retention ended: 1 data-subject request record closed more than 24 months ago$/);
      t.clock.set(new Date('2028-04-15T10:00:00Z'));
      expectCheck((await checks())['retention.overdue'], 'fail', /more than 30 days late: 1 data-subject request record/);
      await t.runtime.retention.run({ dryRun: false });
      // Its held records until the end of 2034 (bookkeeping law).
      t.clock.set(new Date('2034-12-31T10:00:00Z'));
      expectCheck((await checks())['retention.overdue'], 'pass');
      t.clock.set(new Date('2035-01-03T10:00:00Z'));
      expectCheck((await checks())['retention.overdue'], 'warn', /2 held records past the end of their legal hold/);
      t.clock.set(new Date('2035-02-15T10:00:00Z'));
      expectCheck((await checks())['retention.overdue'], 'fail', /more than 30 days late: 2 held records/);
      await t.runtime.retention.run({ dryRun: false });
      expectCheck((await checks())['retention.overdue'], 'pass');
    } finally {
      t.clock.set(START);
    }
  });
  it('a card past its expiry plus the grace period warns until custos cards sweep removes it', async () => {
    const payments = await t.bearer(['payments']);
    const res = await t.app.inject({ method: 'POST', url: '/v1/cards', headers: { authorization: payments, 'custos-purpose': 'payments' }, payload: { pan: '4111111111111111', exp_month: 4, exp_year: 2026 } });
    expect(res.statusCode, res.body).toBe(201);
    try {
      t.clock.set(new Date('2026-05-20T10:00:00Z'));
      expectCheck((await checks())['retention.overdue'], 'pass');
      t.clock.set(new Date('2026-06-05T10:00:00Z'));
      const late = (await checks())['retention.overdue'];
      expectCheck(late, 'warn', /1 card past expiry plus the grace period/);
      expect(late?.fix).toMatch(/custos cards sweep/);
      await t.runtime.cards.sweepExpired(t.runtime.config.cardsExpiryGraceDays);
      expectCheck((await checks())['retention.overdue'], 'pass');
    } finally {
      t.clock.set(START);
    }
  });
});

describe(`GET /v1/security/posture (${TEST_DIALECT})`, () => {
  const signedIn = async (role: string) => {
    const { email, memberId } = await staffMember(t, role, { trainedOn: t.clock.now().toISOString().slice(0, 10) });
    const { jar } = await signIn(t, email, STRONG, new CookieJar(), '/v1/staff/auth');
    await enrolTotp(t, jar, '/v1/staff/auth');
    return { jar, memberId };
  };

  it('a security officer gets the report (no probe, no npm audit), audited, reused for five minutes; a tampered audit row makes the next run fail and raises the audit_tamper alert', async () => {
    const { jar, memberId } = await signedIn('security_officer');
    const res = await browser(t, jar, 'GET', '/v1/security/posture');
    expect(res.statusCode, res.body).toBe(200);
    const body = res.json<{ status: string; generated_at: string; fresh_until: string; checks: CheckResult[] }>();
    expect(Object.keys(body)).toEqual(['status', 'generated_at', 'fresh_until', 'checks']);
    expect(Date.parse(body.fresh_until) - Date.parse(body.generated_at)).toBe(POSTURE_REUSE_MS);
    for (const c of body.checks) expect(Object.keys(c)).toEqual(['id', 'status', 'summary', 'fix']);
    const ids = body.checks.map((c) => c.id);
    expect(ids).toEqual(expect.arrayContaining(['tls.config', 'files.permissions', 'keys.age', 'audit.verify', 'staff.mfa', 'runtime.node']));
    expect(ids.filter((id) => id.startsWith('tls.'))).toEqual(['tls.config']);
    expect(ids).not.toContain('dependencies.advisories');
    await t.runtime.audit.chainPending();
    const audited = await t.runtime.store.db.selectFrom('audit_log').select(['actor', 'outcome']).where('action', '=', 'posture.read').execute();
    expect(audited).toContainEqual({ actor: `staff:${memberId}`, outcome: 'success' });

    const db = t.runtime.store.db;
    const row = await db.selectFrom('audit_log').select(['id', 'outcome']).where('action', '=', 'posture.read').orderBy('id', 'desc').executeTakeFirstOrThrow();
    await db.updateTable('audit_log').set({ outcome: 'denied' }).where('id', '=', row.id).execute();
    try {
      // Within five minutes the report made before the edit is answered again, saying when it was made.
      const reused = (await browser(t, jar, 'GET', '/v1/security/posture')).json<typeof body>();
      expect(reused.generated_at).toBe(body.generated_at);
      expect(reused.checks.find((c) => c.id === 'audit.verify')?.status).toBe('pass');
      t.clock.advance(POSTURE_REUSE_MS);
      const broken = (await browser(t, jar, 'GET', '/v1/security/posture')).json<typeof body>();
      expect(broken.generated_at).toBe(t.clock.now().toISOString());
      expect(broken.status).toBe('fail');
      expect(broken.checks.find((c) => c.id === 'audit.verify')).toMatchObject({ status: 'fail', summary: expect.stringMatching(new RegExp(`audit tree BROKEN at (leaf \\d+, )?entry ${row.id}:`)) });
      await t.runtime.detection.settle();
      const alerts = await db.selectFrom('detection_alerts').select(['rule', 'severity', 'detail']).where('rule', '=', 'audit_tamper').execute();
      expect(alerts).toHaveLength(1);
      expect(JSON.parse(alerts[0]!.detail)).toMatchObject({ check: 'tree' });
    } finally {
      await db.updateTable('audit_log').set({ outcome: row.outcome }).where('id', '=', row.id).execute();
    }
  });

  it('the server leaves detection\'s decoy API key out of the unused-key check', async () => {
    const planted = await t.runtime.detection.honeytokens.plant({ customers: 0, cards: 0, emailDomain: 'example.com' });
    t.clock.advance(POSTURE_REUSE_MS + 91 * DAY);
    try {
      const { jar } = await signedIn('security_officer');
      const check = (await browser(t, jar, 'GET', '/v1/security/posture')).json<{ checks: CheckResult[] }>().checks.find((c) => c.id === 'apikeys.unused');
      expect(check?.status).toBe('warn');
      expect(check?.summary).not.toContain(planted.api_key.id);
    } finally {
      t.clock.set(START);
    }
  });

  it('staff without incidents.manage get 403; no session 401', async () => {
    const { jar } = await signedIn('privacy_officer');
    const denied = await browser(t, jar, 'GET', '/v1/security/posture');
    expect(denied.statusCode).toBe(403);
    expect(denied.json<{ error: { code: string } }>().error.code).toBe('STAFF_PERMISSION_DENIED');
    const none = await t.app.inject({ method: 'GET', url: '/v1/security/posture' });
    expect(none.statusCode).toBe(401);
    const apiKey = await t.app.inject({ method: 'GET', url: '/v1/security/posture', headers: { authorization: shop } });
    expect(apiKey.statusCode).toBe(401);
  });
});
