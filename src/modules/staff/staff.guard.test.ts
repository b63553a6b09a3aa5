import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../../kernel/errors.ts';
import { staffActor } from './guard.ts';
import { CLI_OPERATOR } from './ports.ts';
import { codeOf, staffFixture, type StaffFixture } from './test-support/fixture.ts';

let f: StaffFixture;
beforeAll(async () => {
  f = await staffFixture();
});
afterAll(() => f.close());

const refusals = async (subjectId: string) =>
  (await f.audit.forSubject(subjectId, { limit: 100 })).filter((e) => e.outcome === 'denied').map((e) => e.action);

describe('the staff guard in front of every read of personal data', () => {
  // Attack: a staff member who never enrolled a second factor (stolen password alone) reads customers.
  it('refuses a member without a second factor with STAFF_MFA_REQUIRED, and releases once TOTP is on', async () => {
    const customer = await f.customer();
    const agent = await f.member('support_agent', { mfa: false });
    const refused = await f.read(agent.id, 'support', customer).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(AppError);
    expect((refused as AppError).code).toBe('STAFF_MFA_REQUIRED');
    expect((refused as AppError).status).toBe(403);
    expect(await refusals(customer)).toContain('staff.access.mfa_required');
    await f.enrolTotp(agent.accountId);
    expect((await f.read(agent.id, 'support', customer)).name).toBe('Ada Lovelace');
  });

  // Attack: a suspended member's still-open session keeps reading.
  it('refuses a suspended member at the next read, with STAFF_SUSPENDED', async () => {
    const customer = await f.customer();
    const agent = await f.member('support_agent');
    const actor = await f.staff.actorFor(agent.id);
    await f.staff.members.suspend(CLI_OPERATOR, agent.id);
    expect(await codeOf(f.vault.readCustomer({ actor, purpose: 'support', requestId: 'r1' }, customer))).toBe('STAFF_SUSPENDED');
    expect(await refusals(customer)).toContain('staff.access.suspended');
    await f.staff.members.reactivate(CLI_OPERATOR, agent.id);
    expect((await f.vault.readCustomer({ actor, purpose: 'support', requestId: 'r2' }, customer)).name).toBe('Ada Lovelace');
  });

  it('refuses a member who has not accepted the invitation', async () => {
    const customer = await f.customer();
    const { member } = await f.staff.members.create(CLI_OPERATOR, { email: 'pending.agent@shop.example', role: 'support_agent' });
    expect(await codeOf(f.read(member.id, 'support', customer))).toBe('STAFF_NOT_ACTIVE');
  });

  // Attack: an actor claiming to be staff with a forged or foreign member id.
  it('refuses staff actors that name no member', async () => {
    const customer = await f.customer();
    const forged = staffActor({ id: 'stf_00000000000000000000000000', purposes: ['support'] });
    expect(await codeOf(f.vault.readCustomer({ actor: forged, purpose: 'support', requestId: 'r' }, customer))).toBe('STAFF_NOT_FOUND');
    const odd = { ref: 'staff:somebody', kind: 'staff' as const, purposes: ['support'] };
    expect(await codeOf(f.vault.readCustomer({ actor: odd, purpose: 'support', requestId: 'r' }, customer))).toBe('STAFF_NOT_FOUND');
  });

  it('leaves API keys alone', async () => {
    const customer = await f.customer();
    const shop = { ref: 'apikey:key_other', kind: 'apikey' as const, purposes: ['support'] };
    expect((await f.vault.readCustomer({ actor: shop, purpose: 'support', requestId: 'r' }, customer)).name).toBe('Ada Lovelace');
  });

  // Attack: a role change (demotion) does not take effect until the next sign-in.
  it('applies a role change to the very next read, even through an actor built before it', async () => {
    const customer = await f.customer();
    const officer = await f.member('privacy_officer');
    const actor = await f.staff.actorFor(officer.id);
    await f.staff.members.changeRole(CLI_OPERATOR, officer.id, 'support_agent');
    expect(await codeOf(f.vault.readCustomer({ actor, purpose: 'account', requestId: 'r' }, customer))).toBe('STAFF_ELEVATION_REQUIRED');
    expect(await codeOf(f.read(officer.id, 'account', customer))).toBe('POLICY_PURPOSE_NOT_ALLOWED');
  });
});
