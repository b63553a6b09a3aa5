import Fastify, { type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registerErrorHandling } from '../../http/error-handler.ts';
import type { StaffContext } from './ports.ts';
import { registerStaffInvitationRoutes, registerStaffRoutes } from './routes.ts';
import { staffFixture, type StaffFixture } from './test-support/fixture.ts';

let f: StaffFixture;
let app: FastifyInstance;

beforeAll(async () => {
  f = await staffFixture();
  app = Fastify();
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandling(app);
  // Test only: the session layer sets request.staff; here a header carries it.
  app.decorateRequest('staff', null);
  app.addHook('onRequest', async (request) => {
    const header = request.headers['x-test-staff'];
    request.staff = typeof header === 'string' ? (JSON.parse(header) as StaffContext) : null;
  });
  registerStaffRoutes(app, { staff: f.staff });
  registerStaffInvitationRoutes(app, { staff: f.staff });
  await app.ready();
});
afterAll(async () => {
  await app.close();
  await f.close();
});

const as = (ctx: StaffContext) => ({ 'x-test-staff': JSON.stringify(ctx) });
const call = (method: 'GET' | 'POST' | 'PUT' | 'PATCH', url: string, ctx?: StaffContext, payload?: object) =>
  app.inject({ method, url, headers: ctx === undefined ? {} : as(ctx), ...(payload === undefined ? {} : { payload }) });

describe('/v1/staff HTTP routes', () => {
  it('answers 401 STAFF_SESSION_REQUIRED without a staff session', async () => {
    for (const [method, url] of [['GET', '/v1/staff/me'], ['GET', '/v1/staff/reports'], ['POST', '/v1/staff/elevations']] as const) {
      const res = await call(method, url, undefined, method === 'POST' ? { customer_id: 'x', purpose: 'account', reason: 'x' } : undefined);
      expect(res.statusCode).toBe(401);
      expect(res.json().error.code).toBe('STAFF_SESSION_REQUIRED');
    }
  });

  it('files reports from anyone and lists them to security officers only', async () => {
    const agent = await f.member('support_agent');
    const security = await f.member('security_officer');
    const filed = await call('POST', '/v1/staff/reports', agent.ctx, { kind: 'phishing', summary: 'Fake invoice mail with a macro attachment' });
    expect(filed.statusCode).toBe(201);
    const { id } = filed.json<{ id: string }>();
    const denied = await call('GET', '/v1/staff/reports', agent.ctx);
    expect(denied.statusCode).toBe(403);
    expect(denied.json().error.code).toBe('STAFF_PERMISSION_DENIED');
    const listed = await call('GET', '/v1/staff/reports?limit=10', security.ctx);
    expect(listed.statusCode).toBe(200);
    expect(listed.json().data).toEqual(expect.arrayContaining([expect.objectContaining({ id, kind: 'phishing', summary: 'Fake invoice mail with a macro attachment' })]));
    expect((await call('POST', '/v1/staff/reports', agent.ctx, { kind: 'rumour', summary: 'x' })).statusCode).toBe(400);
  });

  it('runs an elevation: request, self-approval refused, approval by a second person, break-glass needs fresh MFA', async () => {
    const customer = await f.customer();
    const agent = await f.member('support_agent');
    const officer = await f.member('privacy_officer');
    const asked = await call('POST', '/v1/staff/elevations', agent.ctx, { customer_id: customer, purpose: 'account', reason: 'Customer asked to correct the birth date' });
    expect(asked.statusCode).toBe(201);
    const { id } = asked.json<{ id: string }>();
    const self = await call('POST', `/v1/staff/elevations/${id}/approve`, agent.ctx);
    expect(self.statusCode).toBe(403);
    expect(self.json().error.code).toBe('STAFF_PERMISSION_DENIED');
    const approved = await call('POST', `/v1/staff/elevations/${id}/approve`, officer.ctx);
    expect(approved.statusCode).toBe(200);
    expect(approved.json()).toMatchObject({ id, status: 'active', decided_by: officer.id, customer_id: customer });

    const glass = { customer_id: customer, purpose: 'fraud_prevention', reason: 'Chargeback investigation, urgent', break_glass: true };
    const stale = await call('POST', '/v1/staff/elevations', { ...agent.ctx, mfaVerifiedAt: new Date(f.clock.now().getTime() - 600_000).toISOString() }, glass);
    expect(stale.statusCode).toBe(401);
    expect(stale.json().error.code).toBe('STAFF_FRESH_MFA_REQUIRED');
    const fresh = await call('POST', '/v1/staff/elevations', { ...agent.ctx, mfaVerifiedAt: f.clock.now().toISOString() }, glass);
    expect(fresh.statusCode).toBe(201);
    expect(fresh.json()).toMatchObject({ status: 'active', break_glass: true });
  });

  it('invites by email without ever returning the link, and accepts through the public route', async () => {
    const admin = await f.member('admin');
    const agent = await f.member('support_agent');
    const to = 'route.invitee@shop.example';
    expect((await call('POST', '/v1/staff/members', agent.ctx, { email: to, role: 'fulfilment' })).statusCode).toBe(403);
    const created = await call('POST', '/v1/staff/members', admin.ctx, { email: to, role: 'fulfilment' });
    expect(created.statusCode).toBe(201);
    // The role grants a purpose: the member starts unassigned until a second admin approves it.
    expect(created.json()).toMatchObject({ status: 'invited', invitation_mailed: true, role: 'unassigned', pending_role_change: { kind: 'assign', role: 'fulfilment', status: 'pending' } });
    const second = await f.member('admin');
    const approved = await call('POST', `/v1/staff/role-changes/${created.json().pending_role_change.id}/approve`, second.ctx);
    expect(approved.json()).toMatchObject({ status: 'applied', decided_by: `staff:${second.id}` });
    const token = f.tokenFor(to).reveal();
    expect(created.body).not.toContain(token.split('.')[1]);
    const accepted = await call('POST', '/v1/staff/invitations/accept', undefined, { token, password: 'Velvet-harbour-mosaic-19' });
    expect(accepted.statusCode).toBe(200);
    expect(accepted.json()).toEqual({ member_id: created.json().id, next: 'enrol_second_factor' });
    const me = await call('GET', '/v1/staff/me', { memberId: created.json().id, role: 'fulfilment', mfaVerifiedAt: null });
    expect(me.json()).toMatchObject({ email: to, status: 'active', mfa_enrolled: false, purposes: ['fulfilment'] });
  });

  it('manages courses and completions, and shows the admins who is blocked', async () => {
    const admin = await f.member('admin');
    const agent = await f.member('support_agent', { trained: false });
    const put = await call('PUT', '/v1/staff/training/courses/pci_awareness', admin.ctx, { title: 'PCI awareness', required_for: ['support_agent'] });
    expect(put.statusCode).toBe(200);
    expect(put.json()).toMatchObject({ name: 'pci_awareness', required_for: ['support_agent'] });
    const blocked = await call('GET', '/v1/staff/training/blocked', admin.ctx);
    const entry = blocked.json<{ data: { member_id: string; courses: { course: string; state: string }[] }[] }>().data.find((b) => b.member_id === agent.id);
    expect(entry?.courses.map((c) => `${c.course}:${c.state}`).sort()).toEqual(['pci_awareness:missing', 'security_awareness:missing']);
    const today = f.clock.now().toISOString().slice(0, 10);
    for (const course of ['security_awareness', 'pci_awareness']) {
      const done = await call('POST', '/v1/staff/training/completions', admin.ctx, { member_id: agent.id, course, completed_on: today });
      expect(done.statusCode).toBe(201);
    }
    const own = await call('GET', `/v1/staff/training/status/${agent.id}`, agent.ctx);
    expect(own.json()).toMatchObject({ member_id: agent.id, blocked: false });
    expect((await call('GET', '/v1/staff/training/status', agent.ctx)).statusCode).toBe(403);
    expect((await app.inject({ method: 'DELETE', url: '/v1/staff/training/courses/pci_awareness', headers: as(admin.ctx) })).statusCode).toBe(204);
  });

  it('changes roles and suspends through staff.manage only', async () => {
    const admin = await f.member('admin');
    const agent = await f.member('support_agent');
    // A role with nothing beyond the current one applies at once.
    const narrowed = await call('PATCH', `/v1/staff/members/${agent.id}`, admin.ctx, { role: 'unassigned' });
    expect(narrowed.statusCode).toBe(200);
    expect(narrowed.json()).toMatchObject({ role: 'unassigned', purposes: [] });
    // One that grants waits for a second admin.
    const patched = await call('PATCH', `/v1/staff/members/${agent.id}`, admin.ctx, { role: 'fulfilment' });
    expect(patched.statusCode).toBe(202);
    expect(patched.json().role_change).toMatchObject({ kind: 'assign', role: 'fulfilment', member_id: agent.id, status: 'pending' });
    const second = await f.member('admin');
    expect((await call('POST', `/v1/staff/role-changes/${patched.json().role_change.id}/approve`, second.ctx)).statusCode).toBe(200);
    expect((await call('GET', `/v1/staff/members/${agent.id}`, admin.ctx)).json()).toMatchObject({ role: 'fulfilment', purposes: ['fulfilment'] });
    const suspended = await call('POST', `/v1/staff/members/${agent.id}/suspend`, admin.ctx);
    expect(suspended.json()).toEqual({ id: agent.id, status: 'suspended' });
    const meSuspended = await call('GET', '/v1/staff/me', agent.ctx);
    expect(meSuspended.statusCode).toBe(403);
    expect(meSuspended.json().error.code).toBe('STAFF_SUSPENDED');
    const roles = await call('GET', '/v1/staff/roles', admin.ctx);
    expect(roles.json().data.map((r: { name: string }) => r.name)).toEqual(expect.arrayContaining(['support_agent', 'fulfilment', 'privacy_officer', 'security_officer', 'admin']));
  });

  it('an admin cannot widen a role through PUT /v1/staff/roles alone (self-granted purposes wait for a second admin)', async () => {
    const admin = await f.member('admin');
    const put = (ctx: StaffContext, purposes: string[]) => call('PUT', '/v1/staff/roles/gift_desk', ctx, { purposes, permissions: [] });
    const created = await put(admin.ctx, ['fulfilment']);
    expect(created.statusCode).toBe(202);
    expect(created.json()).toMatchObject({ role: null, role_change: { kind: 'define', role: 'gift_desk', status: 'pending' } });
    const second = await f.member('admin');
    expect((await call('POST', `/v1/staff/role-changes/${created.json().role_change.id}/approve`, second.ctx)).statusCode).toBe(200);
    const widened = await put(admin.ctx, ['fulfilment', 'account']);
    expect(widened.statusCode).toBe(202);
    const roles = await call('GET', '/v1/staff/roles', admin.ctx);
    expect(roles.json().data.find((r: { name: string }) => r.name === 'gift_desk')).toMatchObject({ purposes: ['fulfilment'] });
    const self = await call('POST', `/v1/staff/role-changes/${widened.json().role_change.id}/approve`, admin.ctx);
    expect(self.statusCode).toBe(403);
    expect(self.json().error.code).toBe('STAFF_ROLE_CHANGE_SELF_APPROVAL');
    const pending = await call('GET', '/v1/staff/role-changes?status=pending', second.ctx);
    expect(pending.json().data.map((c: { id: string }) => c.id)).toContain(widened.json().role_change.id);
    // Narrowing applies at once.
    const narrowed = await put(admin.ctx, []);
    expect(narrowed.statusCode).toBe(200);
    expect(narrowed.json()).toMatchObject({ name: 'gift_desk', purposes: [] });
    expect((await app.inject({ method: 'DELETE', url: '/v1/staff/roles/gift_desk', headers: as(admin.ctx) })).statusCode).toBe(204);
  });
});
