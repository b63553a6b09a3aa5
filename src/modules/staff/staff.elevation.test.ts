import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CLI_OPERATOR } from './ports.ts';
import { codeOf, staffFixture, type StaffFixture } from './test-support/fixture.ts';

const MINUTE = 60_000;
let f: StaffFixture;
beforeAll(async () => {
  f = await staffFixture();
});
afterAll(() => f.close());

const reason = 'Customer called about a wrong delivery address, ticket 4711';
const readAs = async (actor: Awaited<ReturnType<StaffFixture['staff']['actorFor']>>, purpose: string, customer: string) =>
  f.vault.readCustomer({ actor, purpose, requestId: 'req-elev' }, customer);

describe('just-in-time elevation', () => {
  it('approved by a second person: that purpose, that customer only, until it expires', async () => {
    const [mine, other] = [await f.customer(), await f.customer()];
    const agent = await f.member('support_agent');
    const officer = await f.member('privacy_officer');
    const asked = await f.staff.elevations.request(agent.ctx, { customerId: mine, purpose: 'account', reason });
    expect(asked).toMatchObject({ status: 'pending', durationMinutes: 60, breakGlass: false });
    expect(await codeOf(f.read(agent.id, 'account', mine))).toBe('POLICY_PURPOSE_NOT_ALLOWED');

    const granted = await f.staff.elevations.approve(officer.ctx, asked.id);
    expect(granted.status).toBe('active');
    expect(granted.decidedBy).toBe(officer.id);
    const actor = await f.staff.actorFor(agent.id);
    expect(actor.purposes).toEqual(['account', 'support']);
    expect((await readAs(actor, 'account', mine)).date_of_birth).toBe('1815-12-10');
    // Wrong customer: still refused, even though the actor now lists the purpose.
    expect(await codeOf(readAs(actor, 'account', other))).toBe('STAFF_ELEVATION_REQUIRED');
    // The role's own purpose is untouched for everybody.
    expect((await readAs(actor, 'support', other)).name).toBe('Ada Lovelace');

    f.clock.advance(59 * MINUTE);
    expect((await readAs(actor, 'account', mine)).name).toBe('Ada Lovelace');
    f.clock.advance(MINUTE);
    expect(await codeOf(readAs(actor, 'account', mine))).toBe('STAFF_ELEVATION_REQUIRED');
    expect(await codeOf(f.read(agent.id, 'account', mine))).toBe('POLICY_PURPOSE_NOT_ALLOWED');
    expect((await f.staff.elevations.list(agent.ctx)).find((e) => e.id === asked.id)?.status).toBe('expired');

    const actions = (await f.audit.forSubject(mine, { limit: 50 })).map((e) => e.action);
    expect(actions).toEqual(expect.arrayContaining(['staff.elevation.request', 'staff.elevation.approve', 'staff.access.elevation_required']));
  });

  // Attack: a member approves their own request, or one without the approval permission does.
  it('refuses self-approval and approvals by members without elevation.approve', async () => {
    const customer = await f.customer();
    const officer = await f.member('privacy_officer');
    const agent = await f.member('support_agent');
    const own = await f.staff.elevations.request(officer.ctx, { customerId: customer, purpose: 'fraud_prevention', reason });
    expect(await codeOf(f.staff.elevations.approve(officer.ctx, own.id))).toBe('STAFF_ELEVATION_SELF_APPROVAL');
    expect(await codeOf(f.staff.elevations.approve(agent.ctx, own.id))).toBe('STAFF_PERMISSION_DENIED');
    expect(await codeOf(f.read(officer.id, 'fraud_prevention', customer))).toBe('POLICY_PURPOSE_NOT_ALLOWED');
    const admin = await f.member('admin');
    expect((await f.staff.elevations.approve(admin.ctx, own.id)).status).toBe('active');
    expect(await codeOf(f.staff.elevations.approve(admin.ctx, own.id))).toBe('STAFF_ELEVATION_NOT_PENDING');
  });

  // Attack: break-glass from a session whose second factor was checked long ago (stolen session).
  it('grants break-glass only with a second factor verified in the last 5 minutes, flagged and mailed', async () => {
    const customer = await f.customer();
    const agent = await f.member('support_agent');
    const admin = await f.member('admin');
    const ask = (mfaVerifiedAt: Date | string | null) =>
      f.staff.elevations.request({ memberId: agent.id, mfaVerifiedAt }, { customerId: customer, purpose: 'account', reason, breakGlass: true, durationMinutes: 30 });
    expect(await codeOf(ask(null))).toBe('STAFF_FRESH_MFA_REQUIRED');
    expect(await codeOf(ask(new Date(f.clock.now().getTime() - 6 * MINUTE)))).toBe('STAFF_FRESH_MFA_REQUIRED');
    expect(await codeOf(ask(new Date(f.clock.now().getTime() + 10 * MINUTE).toISOString()))).toBe('STAFF_FRESH_MFA_REQUIRED');
    expect(await codeOf(ask('yesterday'))).toBe('STAFF_FRESH_MFA_REQUIRED');
    expect(await codeOf(f.read(agent.id, 'account', customer))).toBe('POLICY_PURPOSE_NOT_ALLOWED');

    const glass = await ask(new Date(f.clock.now().getTime() - 2 * MINUTE).toISOString());
    expect(glass).toMatchObject({ status: 'active', breakGlass: true, durationMinutes: 30, decidedBy: null });
    expect((await f.read(agent.id, 'account', customer)).date_of_birth).toBe('1815-12-10');
    const entry = (await f.audit.forSubject(customer, { limit: 50 })).find((e) => e.action === 'staff.elevation.break_glass');
    expect(entry).toMatchObject({ actor: `staff:${agent.id}`, recordId: glass.id, purpose: 'account' });
    expect(f.mails.some((m) => m.to === admin.email && m.text.includes(glass.id))).toBe(true);
    f.clock.advance(30 * MINUTE);
    expect(await codeOf(f.read(agent.id, 'account', customer))).toBe('POLICY_PURPOSE_NOT_ALLOWED');
  });

  it('bounds requests: duration 5–480 minutes, declared purposes, a real reason, not for what the role has', async () => {
    const customer = await f.customer();
    const agent = await f.member('support_agent');
    const ask = (over: Record<string, unknown>) =>
      f.staff.elevations.request(agent.ctx, { customerId: customer, purpose: 'account', reason, ...over } as Parameters<StaffFixture['staff']['elevations']['request']>[1]);
    expect(await codeOf(ask({ durationMinutes: 481 }))).toBe('STAFF_ELEVATION_INVALID');
    expect(await codeOf(ask({ durationMinutes: 4 }))).toBe('STAFF_ELEVATION_INVALID');
    expect(await codeOf(ask({ reason: 'because' }))).toBe('STAFF_ELEVATION_INVALID');
    expect(await codeOf(ask({ purpose: 'curiosity' }))).toBe('STAFF_ELEVATION_INVALID');
    expect(await codeOf(ask({ customerId: 'ord_01HZX0000000000000000000000' }))).toBe('STAFF_ELEVATION_INVALID');
    expect(await codeOf(ask({ purpose: 'support' }))).toBe('STAFF_ELEVATION_NEEDLESS');
    expect((await ask({ durationMinutes: 480 })).durationMinutes).toBe(480);
  });

  it('refuses requests from members blocked by MFA or training, and lapses requests after 24 hours', async () => {
    const customer = await f.customer();
    const untrained = await f.member('support_agent', { trained: false });
    const noMfa = await f.member('support_agent', { mfa: false });
    expect(await codeOf(f.staff.elevations.request(untrained.ctx, { customerId: customer, purpose: 'account', reason }))).toBe('STAFF_TRAINING_REQUIRED');
    expect(await codeOf(f.staff.elevations.request(noMfa.ctx, { customerId: customer, purpose: 'account', reason }))).toBe('STAFF_MFA_REQUIRED');
    const agent = await f.member('support_agent');
    const officer = await f.member('privacy_officer');
    const asked = await f.staff.elevations.request(agent.ctx, { customerId: customer, purpose: 'account', reason });
    f.clock.advance(24 * 60 * MINUTE + 1);
    expect(await codeOf(f.staff.elevations.approve(officer.ctx, asked.id))).toBe('STAFF_ELEVATION_NOT_PENDING');
  });

  it('ends an elevation at once when revoked, and when its holder is suspended', async () => {
    const customer = await f.customer();
    const agent = await f.member('support_agent');
    const officer = await f.member('privacy_officer');
    const a = await f.staff.elevations.request(agent.ctx, { customerId: customer, purpose: 'account', reason });
    await f.staff.elevations.approve(officer.ctx, a.id);
    const actor = await f.staff.actorFor(agent.id);
    expect((await readAs(actor, 'account', customer)).name).toBe('Ada Lovelace');
    expect((await f.staff.elevations.revoke(agent.ctx, a.id)).status).toBe('revoked');
    expect(await codeOf(readAs(actor, 'account', customer))).toBe('STAFF_ELEVATION_REQUIRED');

    const b = await f.staff.elevations.request(agent.ctx, { customerId: customer, purpose: 'account', reason });
    await f.staff.elevations.approve(officer.ctx, b.id);
    await f.staff.members.suspend(CLI_OPERATOR, agent.id);
    expect(await codeOf(readAs(actor, 'account', customer))).toBe('STAFF_SUSPENDED');
  });

  it('keeps the stated reason sealed at rest and shows it to approvers only', async () => {
    const customer = await f.customer();
    const agent = await f.member('support_agent');
    const other = await f.member('fulfilment');
    const officer = await f.member('privacy_officer');
    const secretReason = 'Mrs Example phoned from +44 20 7946 0000 about parcel';
    const asked = await f.staff.elevations.request(agent.ctx, { customerId: customer, purpose: 'account', reason: secretReason });
    const rows = await sql<Record<string, unknown>>`SELECT * FROM staff_elevations`.execute(f.db);
    expect(JSON.stringify(rows.rows)).not.toContain('Mrs Example');
    expect((await f.staff.elevations.list(officer.ctx, { status: 'pending' })).find((e) => e.id === asked.id)?.reason).toBe(secretReason);
    expect((await f.staff.elevations.list(other.ctx)).find((e) => e.id === asked.id)).toBeUndefined();
  });
});
