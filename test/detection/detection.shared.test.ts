import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildApp } from '../../src/app.ts';
import { loadConfig } from '../../src/config/config.ts';
import { openRuntime, type Runtime } from '../../src/runtime.ts';
import { uniqueEmail } from '../identity/helpers.ts';
import { testApp, type TestApp } from '../support/app.ts';
import { TEST_DIALECT } from '../support/store.ts';
import { alertsOf, codeOf, from, rulesFile } from './helpers.ts';

/**
 * Two server processes on one database sharing one Redis (REDIS_URL): an attack spread over both
 * counts in the same windows and raises each alert once, and the response taken by one (a source
 * blocked, a key suspended) holds on the other. The second process is a second runtime and app in
 * this test process: they share nothing in memory, only the database and Redis.
 */
const REDIS_URL = process.env.REDIS_URL ?? 'redis://127.0.0.1:6379';
let a: TestApp;
let b: { runtime: Runtime; app: FastifyInstance };
let security: string;

beforeAll(async () => {
  const rules = rulesFile('rules: { bulk_read: { threshold: 6, min_count: 6, responses: [alert, lock_apikey] } }');
  a = await testApp({ env: { REDIS_URL, CUSTOS_DETECTION_RULES: rules, CUSTOS_SIGNIN_IP_LIMIT: '100000' } });
  const runtime = await openRuntime(loadConfig(a.env), { logger: a.runtime.logger });
  b = { runtime, app: await buildApp(runtime) };
  await b.app.ready();
  security = await a.bearer(['security'], 'siem');
});
afterAll(async () => {
  await b?.app.close();
  await b?.runtime.close();
  await a?.close();
});

const apps = () => [a.app, b.app] as const;
const settleBoth = async () => {
  await a.runtime.detection.settle();
  await b.runtime.detection.settle();
};

describe(`two processes sharing Redis (${TEST_DIALECT})`, () => {
  it('a credential-stuffing run spread over both raises one alert, and both refuse the source', async () => {
    const source = '198.51.100.99';
    for (let i = 0; i < 24; i++) {
      const app = apps()[i % 2]!;
      await app.inject({ method: 'POST', url: '/v1/auth/signin', headers: from(source), payload: { email: uniqueEmail('spread'), password: 'not the right password at all' } });
    }
    await settleBoth();
    const alerts = (await alertsOf(a, security)).filter((x) => x.rule === 'credential_stuffing');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ source, actions: ['block_source'] });
    await a.runtime.detection.sync();
    await b.runtime.detection.sync();
    for (const app of apps()) expect(codeOf(await app.inject({ method: 'GET', url: '/v1/customers/cus_00000000000000000000000000', headers: from(source) }))).toBe('DETECTION_SOURCE_BLOCKED');
  });

  it('a bulk read spread over both raises one alert and the key is refused by both', async () => {
    const writer = await a.bearer(['account']);
    const ids: string[] = [];
    for (let i = 0; i < 8; i++)
      ids.push((await a.app.inject({ method: 'POST', url: '/v1/customers', headers: { authorization: writer }, payload: { email: uniqueEmail('shared'), name: 'Shared Read' } })).json<{ id: string }>().id);
    const { key, info } = await a.runtime.apiKeys.create({ name: 'spread-export', purposes: ['support'] });
    const headers = { authorization: `Bearer ${key.reveal()}`, 'custos-purpose': 'support' };
    for (const [i, id] of ids.entries()) await apps()[i % 2]!.inject({ method: 'GET', url: `/v1/customers/${id}`, headers });
    await settleBoth();
    const alerts = (await alertsOf(a, security)).filter((x) => x.rule === 'bulk_read');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ actor: { kind: 'apikey', id: info.id, name: 'spread-export' }, actions: ['lock_apikey'] });
    for (const app of apps()) expect(codeOf(await app.inject({ method: 'GET', url: `/v1/customers/${ids[0]}`, headers }))).toBe('APIKEY_SUSPENDED');
  });

  it('a honeytoken read on both raises one critical alert counting both reads', async () => {
    const planted = await a.runtime.detection.honeytokens.plant({ customers: 1, cards: 0, emailDomain: 'shop.example' });
    await b.runtime.detection.sync();
    const reader = await a.bearer(['support'], 'crm');
    for (const app of apps()) {
      const res = await app.inject({ method: 'GET', url: `/v1/customers/${planted.customers[0]!.id}`, headers: { authorization: reader, 'custos-purpose': 'support' } });
      expect(res.statusCode).toBe(200);
      await settleBoth();
    }
    const alerts = (await alertsOf(a, security)).filter((x) => x.rule === 'honeytoken');
    expect(alerts).toHaveLength(1);
    expect(alerts[0]).toMatchObject({ severity: 'critical', count: 2 });
  });
});
