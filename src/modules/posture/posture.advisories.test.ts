/**
 * Dependency advisories through the real `npm audit`, against a registry started here that
 * answers the bulk advisory endpoint as the npm registry does: a high advisory on a production
 * dependency fails (a CI warning), a moderate one warns, none passes, and a registry that cannot
 * be reached, or refuses the endpoint, is reported as not checked (a warning).
 */
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort } from '../../../test/resilience/harness.ts';
import { checkAdvisories, PROJECT_ROOT } from './advisories.ts';

/** A package's registry document (packument), from the installed copy: npm reads it to see which versions an advisory covers. */
function packument(name: string): unknown {
  const pkg = JSON.parse(readFileSync(join(PROJECT_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as { name: string; version: string; dependencies?: Record<string, string> };
  return { name: pkg.name, 'dist-tags': { latest: pkg.version }, versions: { [pkg.version]: { name: pkg.name, version: pkg.version, dependencies: pkg.dependencies ?? {} } } };
}

let server: Server;
let registry: string;
let answer: { status: number; body: unknown } = { status: 200, body: {} };
const paths: string[] = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    paths.push(`${req.method} ${req.url}`);
    req.resume();
    req.on('end', () => {
      if (req.method === 'GET') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(JSON.stringify(packument(decodeURIComponent(req.url!.slice(1)))));
        return;
      }
      res.writeHead(answer.status, { 'content-type': 'application/json' });
      res.end(JSON.stringify(answer.body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  registry = `http://127.0.0.1:${(server.address() as AddressInfo).port}/`;
});
afterAll(() => new Promise((resolve) => server.close(resolve)));

const env = (reg: string) => ({ PATH: process.env.PATH, HOME: process.env.HOME, npm_config_registry: reg, npm_config_audit_level: 'info' });
const advisory = (id: number, severity: string) => ({
  id,
  url: `https://github.com/advisories/GHSA-test-${id}`,
  title: 'a test advisory',
  severity,
  vulnerable_versions: '<999.0.0',
  cwe: [],
  cvss: { score: 0, vectorString: null },
});

describe('dependencies.advisories (npm audit)', { timeout: 60_000 }, () => {
  it('a high advisory on a production dependency fails, as a CI warning, naming the package', async () => {
    answer = { status: 200, body: { fastify: [advisory(1, 'high')] } };
    const found = await checkAdvisories({ env: env(registry) });
    expect(found).toMatchObject({ id: 'dependencies.advisories', status: 'fail', ciWarn: true });
    expect(found.summary).toMatch(/\d+ high \(.*fastify/);
    expect(paths).toContain('POST /-/npm/v1/security/advisories/bulk');
  });

  it('a moderate advisory warns; none passes', async () => {
    answer = { status: 200, body: { zod: [advisory(2, 'moderate')] } };
    expect(await checkAdvisories({ env: env(registry) })).toMatchObject({ status: 'warn', summary: expect.stringMatching(/\d+ moderate \(.*zod/) });
    answer = { status: 200, body: {} };
    expect(await checkAdvisories({ env: env(registry) })).toMatchObject({ status: 'pass', fix: null });
  });

  it('a registry without the advisory endpoint, or none at all, is reported as not checked', async () => {
    answer = { status: 405, body: {} };
    expect(await checkAdvisories({ env: env(registry) })).toMatchObject({ status: 'warn', summary: expect.stringMatching(/could not be reached \(the registry answered 405\): dependency advisories not checked/) });
    const nobody = `http://127.0.0.1:${await freePort()}/`;
    expect(await checkAdvisories({ env: env(nobody) })).toMatchObject({ status: 'warn', summary: expect.stringMatching(/could not be reached \(npm reported ECONNREFUSED\)/) });
  });

  it('npm that does not answer within the timeout is reported as not checked', async () => {
    answer = { status: 200, body: {} };
    const found = await checkAdvisories({ env: env(registry), timeoutMs: 1 });
    expect(found).toMatchObject({ status: 'warn', summary: expect.stringMatching(/gave no answer within 0 s/) });
  });
});
