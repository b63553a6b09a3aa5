import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { staffActor } from './guard.ts';
import { CLI_OPERATOR } from './ports.ts';
import { DEFAULT_ROLES } from './roles.ts';
import { codeOf, staffFixture, type StaffFixture } from './test-support/fixture.ts';

let f: StaffFixture;
beforeAll(async () => {
  f = await staffFixture();
});
afterAll(() => f.close());

describe('roles → purposes, through the real vault', () => {
  it('releases what each role purpose allows, masked as the inventory says', async () => {
    const customer = await f.customer();
    const support = await f.member('support_agent');
    const fulfilment = await f.member('fulfilment');
    const privacy = await f.member('privacy_officer');
    const security = await f.member('security_officer');

    const seenBySupport = await f.read(support.id, 'support', customer);
    expect(seenBySupport).toMatchObject({ name: 'Ada Lovelace', email: 'a***@e***.org' });
    expect(seenBySupport.phone).toMatch(/^\+44\*+58$/);
    expect(seenBySupport).not.toHaveProperty('date_of_birth');

    const seenByFulfilment = await f.read(fulfilment.id, 'fulfilment', customer);
    expect(seenByFulfilment).toMatchObject({ name: 'Ada Lovelace', email: 'ada@example.org' });
    expect(seenByFulfilment).not.toHaveProperty('date_of_birth');

    const seenByPrivacy = await f.read(privacy.id, 'account', customer);
    expect(seenByPrivacy).toMatchObject({ name: 'Ada Lovelace', email: 'ada@example.org', date_of_birth: '1815-12-10' });

    const seenBySecurity = await f.read(security.id, 'fraud_prevention', customer);
    expect(seenBySecurity.email).toBe('ada@example.org');
    expect(seenBySecurity.date_of_birth).not.toBe('1815-12-10');
    expect(seenBySecurity.phone).not.toBe('+442079460958');
  });

  it('refuses purposes outside the role, and gives admins no customer data at all', async () => {
    const customer = await f.customer();
    const support = await f.member('support_agent');
    const admin = await f.member('admin');
    expect(await codeOf(f.read(support.id, 'account', customer))).toBe('POLICY_PURPOSE_NOT_ALLOWED');
    expect(await codeOf(f.read(support.id, 'marketing', customer))).toBe('POLICY_PURPOSE_NOT_ALLOWED');
    for (const purpose of f.inventory.purposes.keys()) expect(await codeOf(f.read(admin.id, purpose, customer))).toBe('POLICY_PURPOSE_NOT_ALLOWED');
  });

  it('maps the built-in roles to their documented purposes', () => {
    const purposes = (name: string) => [...(DEFAULT_ROLES.get(name)?.purposes ?? ['missing'])].sort();
    expect(purposes('support_agent')).toEqual(['support']);
    expect(purposes('fulfilment')).toEqual(['fulfilment']);
    expect(purposes('privacy_officer')).toEqual(['account', 'legal_obligation', 'support']);
    expect(purposes('security_officer')).toEqual(['fraud_prevention']);
    expect(purposes('admin')).toEqual([]);
    expect(DEFAULT_ROLES.get('security_officer')?.permissions).toContain('reports.read');
    expect(DEFAULT_ROLES.get('admin')?.permissions).toEqual(expect.arrayContaining(['staff.manage', 'roles.manage', 'training.manage']));
    for (const role of DEFAULT_ROLES.values()) for (const p of role.purposes) expect(f.inventory.purposes.has(p)).toBe(true);
    expect(staffActor({ id: 'stf_X', purposes: ['support'] }, ['account', 'support'])).toEqual({ ref: 'staff:stf_X', kind: 'staff', purposes: ['account', 'support'] });
  });

  it('writes the staff member into the audit entry of the read', async () => {
    const customer = await f.customer();
    const support = await f.member('support_agent');
    await f.read(support.id, 'support', customer);
    const entries = await f.audit.forSubject(customer, { limit: 50 });
    expect(entries.some((e) => e.actor === `staff:${support.id}` && e.action === 'vault.read' && e.purpose === 'support')).toBe(true);
  });

  it('lets a shop add a custom role, refusing undeclared purposes and built-in names', async () => {
    const { result: role } = await f.staff.roles.define(CLI_OPERATOR, { name: 'returns_desk', purposes: ['fulfilment', 'support'], permissions: [] });
    expect(role?.purposes).toEqual(['fulfilment', 'support']);
    expect(await codeOf(f.staff.roles.define(CLI_OPERATOR, { name: 'snoop', purposes: ['everything'], permissions: [] }))).toBe('STAFF_ROLE_INVALID');
    expect(await codeOf(f.staff.roles.define(CLI_OPERATOR, { name: 'admin', purposes: [], permissions: [] }))).toBe('STAFF_ROLE_INVALID');
    const customer = await f.customer();
    const desk = await f.member('returns_desk');
    expect((await f.read(desk.id, 'fulfilment', customer)).email).toMatch(/^ada(\+\d+)?@example\.org$/);
    expect(await codeOf(f.staff.roles.remove(CLI_OPERATOR, 'returns_desk'))).toBe('STAFF_ROLE_IN_USE');
  });
});

describe('audit vocabulary', () => {
  it('declares every audit action the staff sources write', async () => {
    const { readdirSync, readFileSync } = await import('node:fs');
    const { STAFF_AUDIT_ACTIONS } = await import('./module.ts');
    const dir = new URL('.', import.meta.url);
    const used = new Set<string>();
    for (const file of readdirSync(dir).filter((n) => n.endsWith('.ts') && !n.includes('.test.') && n !== 'module.ts'))
      for (const m of readFileSync(new URL(file, dir), 'utf8').matchAll(/'(staff\.[a-z_]+\.[a-z_]+)'/g)) used.add(m[1]!);
    expect([...used].sort()).toEqual([...STAFF_AUDIT_ACTIONS].sort());
  });
});
