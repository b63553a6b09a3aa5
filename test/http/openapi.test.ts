import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp } from '../support/app.ts';

/**
 * The published OpenAPI document is complete enough to generate a typed client from, and what it
 * says about authentication is what the server enforces: every operation has a unique
 * operationId, a description and a security requirement naming declared schemes; `servers` names
 * the configured public URL; and an operation documented as needing credentials answers 401
 * without them, while one documented as public does not.
 */
interface Parameter {
  name: string;
  in: string;
  required?: boolean;
  schema?: { pattern?: string };
}
interface Operation {
  operationId?: string;
  description?: string;
  security?: Record<string, string[]>[];
  parameters?: Parameter[];
  requestBody?: unknown;
  responses?: Record<string, { description?: string; content?: Record<string, { schema?: { $ref?: string } }> }>;
}
interface Document {
  servers?: { url: string }[];
  paths: Record<string, Record<string, Operation>>;
  components: { securitySchemes: Record<string, { type: string; in?: string; name?: string }>; schemas: Record<string, unknown> };
}

const PUBLIC_URL = 'https://privacy.shop.example';

/** A value a path parameter's pattern accepts (`^ses_[0-9A-HJKMNP-TV-Z]{26}$` → ses_000…), else a plain name. */
function sampleParam(p: Parameter): string {
  const m = /^\^([a-z]+)_\[0-9A-HJKMNP-TV-Z\]\{26\}\$$/.exec(p.schema?.pattern ?? '');
  return m === null ? 'sample' : `${m[1]}_${'0'.repeat(26)}`;
}

describe('OpenAPI document', () => {
  let t: TestApp;
  let spec: Document;
  const operations: { method: string; path: string; op: Operation }[] = [];
  beforeAll(async () => {
    t = await testApp({ env: { CUSTOS_PUBLIC_URL: PUBLIC_URL } });
    spec = (await t.app.inject({ url: '/v1/openapi.json' })).json();
    for (const [path, item] of Object.entries(spec.paths)) for (const [method, op] of Object.entries(item)) operations.push({ method, path, op });
  });
  afterAll(async () => t.close());

  it('names the configured public URL as its server', () => {
    expect(spec.servers).toEqual([expect.objectContaining({ url: PUBLIC_URL })]);
  });

  it('gives every operation a unique operationId, a description and a security requirement of declared schemes', () => {
    expect(operations.length).toBeGreaterThan(50);
    const ids = operations.map((o) => o.op.operationId);
    expect(ids.every((id) => typeof id === 'string' && /^[a-z][A-Za-z0-9]+$/.test(id))).toBe(true);
    expect(new Set(ids).size).toBe(ids.length);
    for (const { method, path, op } of operations) {
      expect(op.description?.length ?? 0, `${method} ${path}`).toBeGreaterThan(10);
      expect(Array.isArray(op.security), `${method} ${path}`).toBe(true);
      for (const requirement of op.security ?? []) for (const scheme of Object.keys(requirement)) expect(spec.components.securitySchemes, scheme).toHaveProperty([scheme]);
    }
  });

  it('declares the API key, session tokens and the session cookies by their real names', () => {
    const schemes = spec.components.securitySchemes;
    expect(schemes.apiKey).toMatchObject({ type: 'http' });
    expect(schemes.customerSessionCookie).toMatchObject({ type: 'apiKey', in: 'cookie', name: '__Host-custos_session' });
    expect(schemes.staffSessionCookie).toMatchObject({ type: 'apiKey', in: 'cookie', name: '__Host-custos_staff' });
    expect(spec.paths['/v1/me']!.get!.security).toEqual([{ customerSessionToken: [] }, { customerSessionCookie: [] }]);
    expect(spec.paths['/v1/staff/members']!.get!.security).toEqual([{ staffSessionToken: [] }, { staffSessionCookie: [] }]);
    expect(spec.paths['/v1/auth/signin']!.post!.security).toEqual([]);
  });

  it('lists the possible error codes in every error response, with the one Error schema', () => {
    for (const { method, path, op } of operations)
      for (const [status, response] of Object.entries(op.responses ?? {})) {
        if (Number(status) < 400) continue;
        expect(response.description, `${method} ${path} ${status}`).toMatch(/^Error; `code` is one of: `[A-Z_]+`/);
        expect(response.content?.['application/json']?.schema?.$ref, `${method} ${path} ${status}`).toBe('#/components/schemas/Error');
      }
    expect(spec.paths['/v1/customers/{id}']!.get!.responses!['403']!.description).toContain('`POLICY_PURPOSE_NOT_ALLOWED`');
  });

  it('shows examples of the quickstart customer and of a sign-in', () => {
    const body = (path: string) => (spec.paths[path]!.post!.requestBody as { content: Record<string, { schema?: { $ref?: string }; example?: unknown }> }).content['application/json']!;
    const ref = body('/v1/customers').schema!.$ref!.split('/').at(-1)!;
    expect((spec.components.schemas[ref] as { example?: unknown }).example).toMatchObject({ email: 'ada@example.org', name: 'Ada Lovelace' });
    expect(body('/v1/auth/signin').example).toMatchObject({ email: 'ada@example.org' });
  });

  it('marks Custos-Purpose required on vault reads, and optional on writes (API keys may leave it out)', () => {
    const purpose = (op: Operation) => op.parameters?.find((p) => p.in === 'header' && p.name === 'Custos-Purpose');
    expect(purpose(spec.paths['/v1/customers/{id}']!.get!)?.required).toBe(true);
    expect(purpose(spec.paths['/v1/customers']!.get!)?.required).toBe(true);
    expect(purpose(spec.paths['/v1/customers/{id}']!.patch!)?.required).toBe(false);
  });

  it('an operation documented as needing credentials answers 401 without them; a public one does not', async () => {
    let secured = 0;
    let open = 0;
    for (const { method, path, op } of operations) {
      // Bodies are validated before a handler asks for its session; only body-less calls tell.
      if (op.requestBody !== undefined) continue;
      let url = path;
      for (const p of op.parameters ?? []) if (p.in === 'path') url = url.replace(`{${p.name}}`, sampleParam(p));
      const res = await t.app.inject({ method: method.toUpperCase() as 'GET', url, headers: { 'custos-purpose': 'support' } });
      const requirements = op.security ?? [];
      const needsCredentials = requirements.length > 0 && !requirements.some((r) => Object.keys(r).length === 0);
      if (needsCredentials) secured += 1;
      else open += 1;
      expect(res.statusCode === 401, `${method.toUpperCase()} ${path} answered ${res.statusCode} ${res.body}`).toBe(needsCredentials);
    }
    expect(secured).toBeGreaterThan(20);
    expect(open).toBeGreaterThan(0);
  });
});
