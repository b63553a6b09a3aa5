import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { processorsCommand } from '../../cli/commands/processors.ts';
import type { Io } from '../../cli/io.ts';
import { authApp, browser, codeOf, type AuthTest } from '../../../test/identity/helpers.ts';
import { staffSession } from '../consent/test-support/staff-session.ts';
import { TEST_DIALECT } from '../../../test/support/store.ts';
import { person } from '../../../test/vault/helpers.ts';

/**
 * The processor registry: the CLI and the staff API (privacy.manage only), every change audited,
 * removal keeps a past recipient; a processor changes the notice but voids no consent, an
 * independent controller receiving a consent-based purpose does.
 */
let t: AuthTest;
beforeAll(async () => {
  t = await authApp();
});
afterAll(() => t.close());

async function cli(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (l) => void out.push(l), err: (l) => void err.push(l), progress: () => undefined, done: () => undefined };
  return { code: await processorsCommand(t.runtime, args, io), out, err };
}
const staffJar = (role: string) => staffSession(t, role);

describe(`processor registry (${TEST_DIALECT})`, () => {
  it('custos processors add/list/remove; removal keeps a past recipient; every change is audited', async () => {
    const added = await cli('add', '--name', 'Parcel Co', '--purposes', 'fulfilment', '--categories', 'identity,location', '--country', 'DE', '--dpa-signed', '2026-01-15');
    expect(added.code).toBe(0);
    const id = added.out[0]!;
    expect(id).toMatch(/^prc_/);
    expect((await cli('list')).out.join('\n')).toContain(`${id}\tprocessor\tParcel Co\tfulfilment\tidentity,location\tDE\t-\tcurrent`);
    expect((await cli('remove', id)).code).toBe(0);
    expect((await cli('list')).out.join('\n')).not.toContain(id);
    const all = JSON.parse((await cli('list', '--all', '--json')).out.join('\n')) as { id: string; removed_at: string | null }[];
    expect(all.find((p) => p.id === id)?.removed_at).not.toBeNull();
    await t.runtime.audit.chainPending();
    const actions = (await t.runtime.audit.byAction('processors.', { limit: 100, after: 0 })).filter((e) => e.recordId === id).map((e) => e.action);
    expect(actions).toEqual(['processors.add', 'processors.remove']);
  });

  it('refuses undeclared purposes and categories and records nothing', async () => {
    const before = (await t.runtime.processors.list({ all: true })).length;
    await expect(cli('add', '--name', 'X', '--purposes', 'mind_reading', '--categories', 'contact', '--country', 'US')).rejects.toMatchObject({ code: 'PROCESSORS_INPUT_INVALID' });
    await expect(cli('add', '--name', 'X', '--purposes', 'marketing', '--categories', 'dreams', '--country', 'US')).rejects.toMatchObject({ code: 'PROCESSORS_INPUT_INVALID' });
    await expect(cli('add', '--name', 'X', '--purposes', 'marketing', '--categories', 'contact', '--country', 'usa')).rejects.toMatchObject({ code: 'PROCESSORS_INPUT_INVALID' });
    expect((await t.runtime.processors.list({ all: true })).length).toBe(before);
  });

  it('a processor changes the notice version but voids no consent; an independent controller for marketing voids marketing consents', async () => {
    const auth = await t.bearer(['account', 'marketing']);
    const id = (await t.app.inject({ method: 'POST', url: '/v1/customers', headers: { authorization: auth, 'custos-purpose': 'account' }, payload: person().customer })).json<{ id: string }>().id;
    const v = t.runtime.consent.notices.current();
    await t.app.inject({ method: 'POST', url: `/v1/customers/${id}/consents`, headers: { authorization: auth }, payload: { purpose: 'marketing', granted: true, source: 'web_form', notice_version: v } });
    await cli('add', '--name', 'Mail Sender Ltd', '--purposes', 'marketing', '--categories', 'contact', '--country', 'IE', '--safeguard', 'adequacy');
    expect(t.runtime.consent.notices.current()).toBe(v + 1);
    expect(await t.runtime.consent.gate.permits(id, 'marketing')).toBe(true);
    await cli('add', '--name', 'Ad Network Inc', '--role', 'controller', '--purposes', 'marketing', '--categories', 'contact', '--country', 'US', '--safeguard', 'scc');
    expect(t.runtime.consent.notices.current()).toBe(v + 2);
    expect(t.runtime.consent.notices.changedIn('marketing')).toBe(v + 2);
    expect(await t.runtime.consent.gate.permits(id, 'marketing')).toBe(false);
  });

  it('the staff API: a privacy officer manages the registry; a support agent is refused (no privacy.manage)', async () => {
    const officer = await staffJar('privacy_officer');
    const created = await browser(t, officer, 'POST', '/v1/processors', { name: 'Helpdesk SaaS', purposes: ['support'], categories: ['contact'], country: 'NL' });
    expect(created.statusCode, created.body).toBe(201);
    expect((await browser(t, officer, 'GET', '/v1/processors')).json<{ data: { name: string }[] }>().data.map((p) => p.name)).toContain('Helpdesk SaaS');
    const agent = await staffJar('support_agent');
    const refused = await browser(t, agent, 'POST', '/v1/processors', { name: 'Sneaky', purposes: ['support'], categories: ['contact'], country: 'NL' });
    expect(refused.statusCode).toBe(403);
    expect(codeOf(await browser(t, agent, 'GET', '/v1/processors'))).toBe(codeOf(refused));
    expect((await t.app.inject({ url: '/v1/processors' })).statusCode).toBe(401);
  });

  it('the record of processing and the data map: a privacy officer reads them; a support agent is refused (no privacy.manage)', async () => {
    const officer = await staffJar('privacy_officer');
    expect((await browser(t, officer, 'GET', '/v1/ropa')).statusCode).toBe(200);
    expect((await browser(t, officer, 'GET', '/v1/data-map')).statusCode).toBe(200);
    const agent = await staffJar('support_agent');
    expect((await browser(t, agent, 'GET', '/v1/ropa')).statusCode).toBe(403);
    expect((await browser(t, agent, 'GET', '/v1/data-map')).statusCode).toBe(403);
  });
});
