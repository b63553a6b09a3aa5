import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Alert } from '../../src/modules/detection/contracts.ts';
import { apiClient } from '../resilience/api-client.ts';
import { CHILD_TIMEOUT, childEnv, createKey, killChildren, newDatabase, rootKey, runCli, sleep, startServer, type ServerChild } from '../resilience/harness.ts';
import { TEST_DIALECT, type TestDatabase } from '../support/store.ts';

/**
 * The detection commands against a running server, each a real child process: `custos
 * honeytoken plant` prints exactly the planted decoys, and the server, told by the shared
 * generation, alerts on a read of one; `custos apikey suspend|resume` takes effect at once;
 * `custos detection blocks|unblock` lists and lifts a block a rule made.
 */
const KEY = /^ck_[0-9A-HJKMNP-TV-Z]{26}_[A-Za-z0-9_-]{43}$/;

describe(`detection commands (${TEST_DIALECT})`, { timeout: CHILD_TIMEOUT }, () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  let server: ServerChild;
  let security: ReturnType<typeof apiClient>;

  /** The alerts of `rule`, once the server has raised at least one (detection works in the background). */
  async function alertsOf(rule: string): Promise<Alert[]> {
    for (let i = 0; i < 100; i++) {
      const found = ((await security.get(`/v1/security/alerts?rule=${rule}`)).body as { data: Alert[] }).data;
      if (found.length > 0) return found;
      await sleep(100);
    }
    return [];
  }

  beforeAll(async () => {
    db = await newDatabase();
    env = childEnv(db, { CUSTOS_ROOT_KEY: rootKey(), CUSTOS_LOG_LEVEL: 'warn', CUSTOS_SIGNIN_IP_LIMIT: '100000' });
    server = await startServer(env);
    security = apiClient(server.url, await createKey(env, ['security'], 'siem'));
  }, CHILD_TIMEOUT);
  afterAll(async () => {
    await killChildren();
    await db.cleanup();
  });

  it('honeytoken plant prints the decoys as JSON; the running server alerts on a read of one', async () => {
    const r = await runCli(['honeytoken', 'plant', '--customers', '2', '--cards', '1', '--email-domain', 'shop.example'], env);
    expect(r.code, r.stderr).toBe(0);
    const planted = JSON.parse(r.stdout) as { customers: { id: string }[]; cards: { token: string }[]; api_key: { id: string; name: string; secret: string } };
    expect(Object.keys(planted).sort()).toEqual(['api_key', 'cards', 'customers']);
    expect(planted.customers).toHaveLength(2);
    for (const c of planted.customers) expect(Object.keys(c)).toEqual(['id']);
    expect(planted.cards).toHaveLength(1);
    expect(Object.keys(planted.cards[0]!)).toEqual(['token']);
    expect(Object.keys(planted.api_key).sort()).toEqual(['id', 'name', 'secret']);
    expect(planted.api_key.secret).toMatch(KEY);
    expect(r.stderr).not.toContain(planted.api_key.secret);

    const crm = apiClient(server.url, await createKey(env, ['support'], 'crm'));
    // The server learns of the decoys within its two-second look at the shared generation.
    let alerts: Alert[] = [];
    for (let i = 0; i < 50 && alerts.length === 0; i++) {
      expect((await crm.get(`/v1/customers/${planted.customers[1]!.id}`, 'support')).status).toBe(200);
      alerts = await alertsOf('honeytoken');
    }
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ severity: 'critical', actor: { kind: 'apikey', name: 'crm' }, detail: { honeytoken: planted.customers[1]!.id } });
  });

  it('apikey suspend refuses the key at once on the running server; resume restores it', async () => {
    const key = await createKey(env, ['account'], 'storefront');
    const id = `key_${key.split('_')[1]!}`;
    const api = apiClient(server.url, key);
    const probe = '/v1/customers/cus_00000000000000000000000000';
    expect((await api.get(probe, 'account')).status).toBe(404);
    const suspend = await runCli(['apikey', 'suspend', id], env);
    expect(suspend.code, suspend.stderr).toBe(0);
    expect(suspend.stdout).toMatch(new RegExp(`^${id}\\tsuspended `));
    const refused = await api.get(probe, 'account');
    expect(refused.status).toBe(403);
    expect((refused.body as { error: { code: string } }).error.code).toBe('APIKEY_SUSPENDED');
    expect((await runCli(['apikey', 'list'], env)).stdout).toMatch(new RegExp(`${id}\\tsuspended`));
    const resume = await runCli(['apikey', 'resume', id], env);
    expect(resume.stdout).toBe(`${id}\tactive\n`);
    expect((await api.get(probe, 'account')).status).toBe(404);
  });

  it('detection blocks lists a source a rule blocked; unblock lifts it on the running server', async () => {
    const source = '198.51.100.23';
    const signIn = (i: number) =>
      fetch(`${server.url}/v1/auth/signin`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'x-forwarded-for': source },
        body: JSON.stringify({ email: `nobody.${i}@example.com`, password: 'not the right password at all' }),
      });
    for (let i = 0; i < 22; i++) await signIn(i);
    expect(await alertsOf('credential_stuffing')).toHaveLength(1);
    const blocks = await runCli(['detection', 'blocks', '--json'], env);
    expect((JSON.parse(blocks.stdout) as { source: string }[]).map((b) => b.source)).toEqual([source]);
    expect((await signIn(99)).status).toBe(403);

    const lifted = await runCli(['detection', 'unblock', source], env);
    expect(lifted.code, lifted.stderr).toBe(0);
    let status = 403;
    for (let i = 0; i < 50 && status === 403; i++) {
      await sleep(100);
      status = (await signIn(100)).status;
    }
    expect(status).toBe(401);
    expect((await runCli(['detection', 'unblock', source], env)).code).toBe(1);
  });
});
