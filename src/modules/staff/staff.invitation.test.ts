import { sql } from 'kysely';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Secret } from '../../kernel/secret.ts';
import { createStaffServices } from './services.ts';
import { CLI_OPERATOR } from './ports.ts';
import { codeOf, staffFixture, type StaffFixture } from './test-support/fixture.ts';

const HOUR = 3_600_000;
let f: StaffFixture;
beforeAll(async () => {
  f = await staffFixture();
});
afterAll(() => f.close());

const password = () => new Secret(`Lantern-${Math.random().toString(36).slice(2)}-gravel-orbit`);
let n = 0;
const email = () => `invitee${++n}@shop.example`;

describe('staff invitations', () => {
  it('mails a single-use link whose secret is stored only as a hash; accepting sets the password', async () => {
    const to = email();
    const { member, invitation } = await f.staff.members.create(CLI_OPERATOR, { email: to, role: 'fulfilment' });
    expect(member.status).toBe('invited');
    expect(invitation.mailed).toBe(true);
    expect(String(invitation.link)).toBe('[redacted]');
    const token = f.tokenFor(to);
    expect(invitation.link.reveal()).toBe(`https://admin.example.test/staff/accept#token=${token.reveal()}`);
    const secretPart = token.reveal().split('.')[1]!;
    const rows = await sql<Record<string, unknown>>`SELECT * FROM staff_invitations`.execute(f.db);
    expect(JSON.stringify(rows.rows)).not.toContain(secretPart);
    expect(JSON.stringify((await sql<Record<string, unknown>>`SELECT * FROM staff_members`.execute(f.db)).rows)).not.toContain(to);

    const pw = password();
    expect(await f.staff.members.acceptInvitation({ token, password: pw })).toEqual({ memberId: member.id, accountId: member.accountId });
    expect((await f.staff.directory.member(member.id)).status).toBe('active');
    expect((await f.accounts.authenticate({ realm: 'staff', email: to, password: pw }))?.id).toBe(member.accountId);
    expect(await codeOf(f.staff.members.acceptInvitation({ token, password: password() }))).toBe('STAFF_INVITATION_USED');
    expect(await codeOf(f.staff.members.invite(CLI_OPERATOR, member.id))).toBe('STAFF_MEMBER_NOT_INVITED');
  });

  // Attack: guessing or altering the link's secret, or using it after it expired.
  it('refuses forged, malformed and expired links', async () => {
    const to = email();
    const { member } = await f.staff.members.create(CLI_OPERATOR, { email: to, role: 'fulfilment' });
    const token = f.tokenFor(to).reveal();
    const [id, secret] = token.split('.') as [string, string];
    const flipped = `${secret.slice(0, -1)}${secret.endsWith('A') ? 'B' : 'A'}`;
    for (const bad of [`${id}.${flipped}`, `${id}.`, secret, 'inv_00000000000000000000000000.' + secret, `${token}x`])
      expect(await codeOf(f.staff.members.acceptInvitation({ token: new Secret(bad), password: password() }))).toBe('STAFF_INVITATION_INVALID');
    f.clock.advance(24 * HOUR);
    expect(await codeOf(f.staff.members.acceptInvitation({ token: new Secret(token), password: password() }))).toBe('STAFF_INVITATION_INVALID');
    expect((await f.staff.directory.member(member.id)).status).toBe('invited');
  });

  it('supersedes the old link when a new one is issued, and keeps a link usable after a refused password', async () => {
    const to = email();
    const { member } = await f.staff.members.create(CLI_OPERATOR, { email: to, role: 'support_agent' });
    const first = f.tokenFor(to);
    const again = await f.staff.members.invite(CLI_OPERATOR, member.id);
    expect(again.mailed).toBe(true);
    const second = f.tokenFor(to);
    expect(await codeOf(f.staff.members.acceptInvitation({ token: first, password: password() }))).toBe('STAFF_INVITATION_INVALID');
    expect(await codeOf(f.staff.members.acceptInvitation({ token: second, password: new Secret('short') }))).toBe('IDENTITY_PASSWORD_TOO_SHORT');
    expect(await codeOf(f.staff.members.acceptInvitation({ token: second, password: password() }))).toBe('ok');
  });

  // Attack: the same link submitted twice at once, hoping both set a password.
  it('lets only one of two racing uses of a link through', async () => {
    const to = email();
    await f.staff.members.create(CLI_OPERATOR, { email: to, role: 'support_agent' });
    const token = f.tokenFor(to);
    const results = await Promise.all([0, 1].map(() => codeOf(f.staff.members.acceptInvitation({ token, password: password() }))));
    expect(results.sort()).toEqual(['STAFF_INVITATION_USED', 'ok']);
  });

  it('refuses duplicates, unknown roles, suspended invitees and members without staff.manage', async () => {
    const to = email();
    const { member } = await f.staff.members.create(CLI_OPERATOR, { email: to, role: 'support_agent' });
    expect(await codeOf(f.staff.members.create(CLI_OPERATOR, { email: to.toUpperCase(), role: 'admin' }))).toBe('STAFF_MEMBER_EXISTS');
    expect(await codeOf(f.staff.members.create(CLI_OPERATOR, { email: email(), role: 'overlord' }))).toBe('STAFF_ROLE_UNKNOWN');
    expect(await codeOf(f.staff.members.create(CLI_OPERATOR, { email: 'not an address', role: 'admin' }))).toBe('IDENTITY_EMAIL_INVALID');
    await f.staff.members.suspend(CLI_OPERATOR, member.id);
    expect(await codeOf(f.staff.members.acceptInvitation({ token: f.tokenFor(to), password: password() }))).toBe('STAFF_SUSPENDED');
    expect((await f.staff.members.reactivate(CLI_OPERATOR, member.id)).status).toBe('invited');

    const agent = await f.member('support_agent');
    const admin = await f.member('admin');
    expect(await codeOf(f.staff.members.create({ kind: 'staff', ...agent.ctx }, { email: email(), role: 'admin' }))).toBe('STAFF_PERMISSION_DENIED');
    expect(await codeOf(f.staff.members.suspend({ kind: 'staff', ...admin.ctx }, admin.id))).toBe('STAFF_SELF_CHANGE');
    expect(await codeOf(f.staff.members.changeRole({ kind: 'staff', ...admin.ctx }, admin.id, 'privacy_officer'))).toBe('STAFF_SELF_CHANGE');
    expect((await f.staff.members.create({ kind: 'staff', ...admin.ctx }, { email: email(), role: 'fulfilment' })).member.status).toBe('invited');
  });

  it('hands the link back when no mailer is wired, and says it was not mailed', async () => {
    const noMail = createStaffServices({
      db: f.db,
      clock: f.clock,
      audit: f.audit,
      accounts: f.accounts,
      keys: f.staffKeys,
      knownPurposes: f.inventory.purposes,
      invitationUrl: 'https://admin.example.test/accept',
    });
    const { member, invitation } = await noMail.members.create(CLI_OPERATOR, { email: email(), role: 'fulfilment' });
    expect(invitation.mailed).toBe(false);
    const token = invitation.link.reveal().split('#token=')[1]!;
    expect((await noMail.members.acceptInvitation({ token: new Secret(token), password: password() })).memberId).toBe(member.id);
  });
});
