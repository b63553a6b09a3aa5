import { main } from '../../cli/main.ts';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runStaffCommand } from '../../cli/commands/staff.ts';
import type { Io } from '../../cli/io.ts';
import { UsageError } from '../../cli/io.ts';
import { Secret } from '../../kernel/secret.ts';
import { createStaffServices } from './services.ts';
import { staffFixture, type StaffFixture } from './test-support/fixture.ts';

let f: StaffFixture;
beforeAll(async () => {
  f = await staffFixture();
});
afterAll(() => f.close());

function io() {
  const out: string[] = [];
  const err: string[] = [];
  const sink: Io = { out: (l) => void out.push(l), err: (l) => void err.push(l), progress: () => undefined, done: () => undefined };
  return { sink, out, err };
}
const run = async (...args: string[]) => {
  const c = io();
  const code = await runStaffCommand(f.staff, args, c.sink);
  return { code, out: c.out, err: c.err };
};

describe('custos staff', () => {
  it('is listed in the usage of custos', async () => {
    const c = io();
    expect(await main(['help'], c.sink, {})).toBe(0);
    expect(c.out.join('\n')).toContain('staff create --email E --role R');
    expect(c.out.join('\n')).toContain('staff training complete --email E --course C --date YYYY-MM-DD');
  });

  it('creates a member by invitation, records training and shows who is blocked', async () => {
    const created = await run('create', '--email', 'cli.agent@shop.example', '--role', 'support_agent');
    expect(created.code).toBe(0);
    expect(created.out).toEqual([]);
    expect(created.err.join('\n')).toMatch(/invitation mailed/);
    await f.staff.members.acceptInvitation({ token: f.tokenFor('cli.agent@shop.example'), password: new Secret('Copper-kettle-lighthouse-7') });

    const before = await run('training', 'status', '--email', 'cli.agent@shop.example');
    expect(before.out[0]).toMatch(/\tsupport_agent\tactive\tBLOCKED\tsecurity_awareness:missing$/);
    expect(before.err.join('\n')).toMatch(/1 member\(s\) blocked/);

    expect((await run('training', 'course', 'add', '--course', 'pci_awareness', '--required-for', 'support_agent,fulfilment')).out).toEqual([
      'pci_awareness\tfulfilment,support_agent\tpci awareness',
    ]);
    for (const course of ['security_awareness', 'pci_awareness'])
      expect((await run('training', 'complete', '--email', 'cli.agent@shop.example', '--course', course, '--date', '2026-03-01')).out[0]).toMatch(
        /^trn_\w+\tvalid until 2027-03-01$/,
      );
    const after = await run('training', 'status', '--email', 'cli.agent@shop.example');
    expect(after.out[0]).toMatch(/\tok\t/);
    expect(after.err).toEqual([]);
    await run('training', 'course', 'remove', '--course', 'pci_awareness');
    expect((await run('training', 'course', 'list')).out).toEqual(['security_awareness\tall\tSecurity awareness']);
  });

  it('changes roles, suspends and lists', async () => {
    await run('create', '--email', 'cli.packer@shop.example', '--role', 'fulfilment');
    expect((await run('role', '--email', 'cli.packer@shop.example', '--role', 'support_agent')).out[0]).toMatch(/\tsupport_agent\tinvited$/);
    expect((await run('suspend', '--email', 'cli.packer@shop.example')).out[0]).toMatch(/\tsuspended$/);
    expect((await run('reactivate', '--email', 'cli.packer@shop.example')).out[0]).toMatch(/\tinvited$/);
    const list = await run('list');
    expect(list.out.some((l) => l.includes('cli.packer@shop.example\tsupport_agent\tinvited\tNO-MFA'))).toBe(true);
    expect((await run('roles')).out).toContain('admin\t-\tstaff.manage,roles.manage,training.manage,elevation.approve\tbuilt-in');
  });

  it('prints the link once when no mailer is wired', async () => {
    const noMail = createStaffServices({ db: f.db, clock: f.clock, audit: f.audit, accounts: f.accounts, keys: f.staffKeys, knownPurposes: f.inventory.purposes, invitationUrl: 'https://admin.example.test/accept' });
    const c = io();
    expect(await runStaffCommand(noMail, ['create', '--email', 'cli.nomail@shop.example', '--role', 'fulfilment'], c.sink)).toBe(0);
    expect(c.out).toHaveLength(1);
    expect(c.out[0]).toMatch(/^https:\/\/admin\.example\.test\/accept#token=inv_\w{26}\.[\w-]{43}$/);
    expect(c.err.join('\n')).toMatch(/no mailer configured/);
  });

  it('answers usage errors for missing options', async () => {
    await expect(run('create', '--email', 'x@shop.example')).rejects.toBeInstanceOf(UsageError);
    await expect(run('training', 'complete', '--email', 'x@shop.example')).rejects.toBeInstanceOf(UsageError);
    await expect(run('fly')).rejects.toBeInstanceOf(UsageError);
  });
});
