import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp } from '../support/app.ts';
import { call } from './helpers.ts';

/**
 * The published API description: GET /v1/openapi.json is OpenAPI 3.1 and lists every vault path
 * with its methods (so generated clients cover the whole contract), and /docs serves the HTML
 * reference.
 */
const VAULT_PATHS: Record<string, string[]> = {
  '/v1/customers': ['get', 'post'],
  '/v1/customers/{id}': ['get', 'patch'],
  '/v1/customers/{id}/addresses': ['post'],
  '/v1/customers/{id}/orders': ['get', 'post'],
  '/v1/orders/{id}': ['get'],
  '/v1/customers/{id}/access-log': ['get'],
};

interface Operation {
  parameters?: { name: string; in: string; required?: boolean }[];
  requestBody?: { content?: Record<string, { schema?: unknown }> };
  responses?: Record<string, unknown>;
  security?: unknown[];
}

describe('vault API description', () => {
  let t: TestApp;
  let spec: { openapi: string; paths: Record<string, Record<string, Operation>>; components?: Record<string, Record<string, unknown>> };
  beforeAll(async () => {
    t = await testApp();
    const res = await call(t, { url: '/v1/openapi.json' });
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^application\/json/);
    spec = res.json();
  });
  afterAll(async () => t.close());

  it('is OpenAPI 3.1', () => {
    expect(spec.openapi).toMatch(/^3\.1\.\d+$/);
  });

  it('lists every vault path with its methods', () => {
    for (const [path, methods] of Object.entries(VAULT_PATHS)) {
      expect(spec.paths, path).toHaveProperty([path]);
      for (const m of methods) expect(spec.paths[path], `${m.toUpperCase()} ${path}`).toHaveProperty([m]);
    }
  });

  it('documents the id path parameter, the purpose header, bodies and API-key security', () => {
    for (const [path, methods] of Object.entries(VAULT_PATHS)) {
      for (const m of methods) {
        const op = spec.paths[path]![m]!;
        const params = op.parameters ?? [];
        if (path.includes('{id}')) expect(params.some((p) => p.in === 'path' && p.name === 'id' && p.required === true), `${m} ${path} id`).toBe(true);
        if (m === 'get') expect(params.some((p) => p.in === 'header' && p.name.toLowerCase() === 'custos-purpose'), `${m} ${path} purpose`).toBe(true);
        if (m === 'post' || m === 'patch') expect(op.requestBody?.content?.['application/json']?.schema, `${m} ${path} body`).toBeDefined();
        expect(op.security, `${m} ${path} security`).toContainEqual({ apiKey: [] });
      }
    }
    expect(spec.components?.securitySchemes?.apiKey).toMatchObject({ type: 'http', scheme: 'bearer' });
  });

  it('documents the success status of each operation', () => {
    expect(spec.paths['/v1/customers']!.post!.responses).toHaveProperty(['201']);
    expect(spec.paths['/v1/customers/{id}/addresses']!.post!.responses).toHaveProperty(['201']);
    expect(spec.paths['/v1/customers/{id}/orders']!.post!.responses).toHaveProperty(['201']);
    for (const [path, m] of [
      ['/v1/customers', 'get'],
      ['/v1/customers/{id}', 'get'],
      ['/v1/customers/{id}', 'patch'],
      ['/v1/customers/{id}/orders', 'get'],
      ['/v1/orders/{id}', 'get'],
      ['/v1/customers/{id}/access-log', 'get'],
    ] as const)
      expect(spec.paths[path]![m]!.responses, `${m} ${path}`).toHaveProperty(['200']);
  });

  it('the routes that take Idempotency-Key name its error codes; the invitation names the codes it answers with', () => {
    const described = (path: string, status: string) => String((spec.paths[path]!.post!.responses?.[status] as { description?: string } | undefined)?.description);
    for (const path of ['/v1/customers', '/v1/customers/{id}/addresses', '/v1/customers/{id}/orders', '/v1/customers/{id}/invitation']) {
      expect(spec.paths[path]!.post!.parameters?.some((p) => p.in === 'header' && p.name.toLowerCase() === 'idempotency-key'), path).toBe(true);
      expect(described(path, '400'), path).toContain('`IDEMPOTENCY_KEY_MALFORMED`');
      expect(described(path, '409'), path).toContain('`IDEMPOTENCY_KEY_IN_FLIGHT`');
      expect(described(path, '422'), path).toContain('`IDEMPOTENCY_KEY_REUSED`');
    }
    expect(described('/v1/customers/{id}/invitation', '409')).toContain('`IDENTITY_INVITATION_NO_EMAIL`');
    expect(described('/v1/customers/{id}/invitation', '429')).toContain('`IDENTITY_THROTTLED`');
    expect(String((spec.paths['/v1/customers/{id}']!.patch!.responses?.['400'] as { description?: string }).description)).not.toContain('IDEMPOTENCY_KEY');
  });

  it('every $ref in the document resolves (no dangling component references)', () => {
    const refs = new Set<string>();
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) node.forEach(walk);
      else if (node !== null && typeof node === 'object')
        for (const [k, v] of Object.entries(node)) {
          if (k === '$ref' && typeof v === 'string') refs.add(v);
          else walk(v);
        }
    };
    walk(spec);
    const dangling = [...refs].filter((ref) => {
      let node: unknown = spec;
      for (const part of ref.replace(/^#\//, '').split('/')) node = (node as Record<string, unknown> | undefined)?.[part];
      return node === undefined;
    });
    expect(dangling).toEqual([]);
  });

  it('the customer write schema declares exactly the inventory fields and refuses others', () => {
    let schema = spec.paths['/v1/customers']!.post!.requestBody?.content?.['application/json']?.schema as Record<string, unknown>;
    const ref = schema.$ref;
    if (typeof ref === 'string') schema = spec.components?.schemas?.[ref.replace('#/components/schemas/', '')] as Record<string, unknown>;
    expect(Object.keys(schema.properties as Record<string, unknown>).sort()).toEqual(['date_of_birth', 'email', 'locale', 'name', 'phone', 'shopify_customer_id']);
    expect(schema.additionalProperties).toBe(false);
  });

  it('GET /docs answers 200 HTML (after redirects)', async () => {
    let res = await call(t, { url: '/docs' });
    for (let hops = 0; hops < 5 && res.statusCode >= 300 && res.statusCode < 400; hops++) {
      const location = String(res.headers.location);
      res = await call(t, { url: location.startsWith('/') ? location : `/docs/${location.replace(/^\.\//, '')}` });
    }
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toMatch(/^text\/html/);
    expect(res.body).toMatch(/<html/i);
  });
});
