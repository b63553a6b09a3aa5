import { readFileSync } from 'node:fs';
import type { InjectOptions } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp } from '../support/app.ts';

/**
 * docs/errors.md describes exactly the error shape the server sends: real bad requests (undeclared
 * and invalid fields, a malformed id, no credentials, an unknown route, broken JSON, a password
 * the policy refuses) answer `{ "error": { … } }` with every member the document marks "always",
 * and no member the document does not list; the documented example has the same shape.
 */
const doc = readFileSync(new URL('../../docs/errors.md', import.meta.url), 'utf8');

function documentedMembers(): { always: Set<string>; all: Set<string> } {
  const start = doc.indexOf('| member of `error` |');
  expect(start, 'docs/errors.md has the table of error members').toBeGreaterThan(0);
  const rows = doc.slice(start).split('\n').slice(2);
  const always = new Set<string>();
  const all = new Set<string>();
  for (const row of rows) {
    if (!row.startsWith('|')) break;
    const [names = '', sent = ''] = row.split('|').slice(1).map((c) => c.trim());
    for (const m of names.matchAll(/`([a-z_]+)`/g)) {
      all.add(m[1]!);
      if (sent === 'always') always.add(m[1]!);
    }
  }
  return { always, all };
}
const documentedCodes = new Set([...doc.matchAll(/^\| `([A-Z0-9_]+)` \| \d{3} \|/gm)].map((m) => m[1]!));

describe('the error shape docs/errors.md describes is the one sent', () => {
  let t: TestApp;
  let key: string;
  beforeAll(async () => {
    t = await testApp();
    key = await t.bearer(['account', 'support']);
  });
  afterAll(async () => t.close());

  const json = (payload: string, extra: Record<string, string> = {}): Partial<InjectOptions> => ({
    payload,
    headers: { 'content-type': 'application/json', ...extra },
  });
  const cases: { why: string; code: string; request: () => InjectOptions }[] = [
    { why: 'an undeclared field', code: 'VAULT_FIELD_UNDECLARED', request: () => ({ method: 'POST', url: '/v1/customers', ...json('{"nickname":"x"}', { authorization: key }) }) },
    { why: 'an invalid field', code: 'VAULT_FIELD_INVALID', request: () => ({ method: 'POST', url: '/v1/customers', ...json('{"email":42}', { authorization: key }) }) },
    { why: 'a malformed id', code: 'VAULT_ID_MALFORMED', request: () => ({ url: '/v1/customers/nope', headers: { authorization: key, 'custos-purpose': 'support' } }) },
    { why: 'no API key', code: 'APIKEY_MISSING', request: () => ({ url: `/v1/customers/cus_${'0'.repeat(26)}` }) },
    { why: 'an unknown route', code: 'ROUTE_NOT_FOUND', request: () => ({ url: '/v1/nowhere' }) },
    { why: 'broken JSON', code: 'REQUEST_MALFORMED_JSON', request: () => ({ method: 'POST', url: '/v1/customers', ...json('{"email":', { authorization: key }) }) },
    { why: 'no session', code: 'IDENTITY_SESSION_REQUIRED', request: () => ({ url: '/v1/me' }) },
    {
      why: 'a password the policy refuses',
      code: 'IDENTITY_PASSWORD_TOO_SHORT',
      request: () => ({ method: 'POST', url: '/v1/auth/signup', ...json('{"email":"shape@example.org","password":"short"}') }),
    },
  ];

  it.each(cases)('$why answers $code with exactly the documented members', async ({ code, request }) => {
    const { always, all } = documentedMembers();
    expect([...always].sort()).toEqual(['code', 'message', 'request_id']);
    const res = await t.app.inject(request());
    expect(res.statusCode, res.body).toBeGreaterThanOrEqual(400);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    const body = res.json<Record<string, unknown>>();
    expect(Object.keys(body)).toEqual(['error']);
    const error = body.error as Record<string, unknown>;
    expect(error.code).toBe(code);
    expect(documentedCodes.has(code), `${code} is listed in docs/errors.md`).toBe(true);
    for (const member of always) expect(typeof error[member], member).toBe('string');
    expect(error.request_id).toBe(res.headers['x-request-id']);
    for (const member of Object.keys(error)) expect(all.has(member), `member ${member} of ${code} is documented`).toBe(true);
  });

  it("the document's own example has the documented members", () => {
    const { always, all } = documentedMembers();
    const example = JSON.parse(/```json\n(.+)\n```/.exec(doc)![1]!) as { error: Record<string, unknown> };
    expect(Object.keys(example)).toEqual(['error']);
    for (const member of always) expect(example.error).toHaveProperty([member]);
    for (const member of Object.keys(example.error)) expect(all.has(member), member).toBe(true);
    expect(documentedCodes.has(String(example.error.code))).toBe(true);
  });
});
