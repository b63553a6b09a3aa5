import { sql } from 'kysely';
import type { InjectOptions, LightMyRequestResponse } from 'fastify';
import { expect } from 'vitest';
import type { TestApp } from '../support/app.ts';

/**
 * Shared pieces of the vault API suites: requests through `app.inject()`, a census of every
 * table (to prove a refused request wrote nothing), and sample personal data distinctive enough
 * that finding one of its strings in a response can only mean it was echoed.
 */

export const UPPER_SNAKE = /^[A-Z][A-Z0-9]*(_[A-Z0-9]+)+$/;

export interface Call {
  method?: InjectOptions['method'];
  url: string;
  auth?: string | undefined;
  purpose?: string | undefined;
  payload?: unknown;
  headers?: Record<string, string>;
}

export async function call(t: TestApp, c: Call): Promise<LightMyRequestResponse> {
  const headers: Record<string, string> = { ...(c.headers ?? {}) };
  if (c.auth !== undefined) headers.authorization = c.auth;
  if (c.purpose !== undefined) headers['custos-purpose'] = c.purpose;
  const options: InjectOptions = { method: c.method ?? 'GET', url: c.url, headers };
  if (c.payload !== undefined) options.payload = c.payload as InjectOptions['payload'];
  return t.app.inject(options);
}

export interface ErrorBody {
  error: { code: string; message: string; request_id: string; fields?: unknown };
}

/** Asserts the response is the error `code` with `status`, in the one error shape; returns the body. */
export function expectError(res: LightMyRequestResponse, status: number, code: string): ErrorBody {
  expect({ status: res.statusCode, body: res.body }).toMatchObject({ status });
  expect(res.headers['content-type']).toMatch(/^application\/json/);
  const body = res.json<ErrorBody>();
  expect(body.error.code).toBe(code);
  expect(typeof body.error.message).toBe('string');
  expect(body.error.request_id).toBe(res.headers['x-request-id']);
  return body;
}

/** Asserts none of `values` occurs anywhere in the response body (case-insensitively). */
export function expectNoValues(res: LightMyRequestResponse | string, values: readonly string[]): void {
  const text = (typeof res === 'string' ? res : res.body).toLowerCase();
  for (const v of values) expect(text, `the body echoes a submitted value`).not.toContain(v.toLowerCase());
}

/** Every table of the schema, by dialect (the migration bookkeeping tables left out). */
export async function tableNames(t: TestApp): Promise<string[]> {
  const { db, dialect } = t.runtime.store;
  const rows =
    dialect === 'sqlite'
      ? await sql<{ name: string }>`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'`.execute(db)
      : await sql<{ name: string }>`SELECT table_name AS name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE'`.execute(
          db,
        );
  return rows.rows.map((r) => r.name).filter((n) => !n.startsWith('kysely_')).sort();
}

/**
 * Row counts of the given tables, after chaining every pending audit entry (the background chainer
 * adds checkpoint rows on its own; with nothing pending it adds none).
 */
export async function census(t: TestApp, tables: readonly string[]): Promise<Record<string, number>> {
  await t.runtime.audit.chainPending();
  const counts = tables.map((table, i) => sql`(SELECT count(*) FROM ${sql.table(table)}) AS ${sql.ref(`n${i}`)}`);
  const r = await sql<Record<string, number | string>>`SELECT ${sql.join(counts)}`.execute(t.runtime.store.db);
  const row = r.rows[0] ?? {};
  return Object.fromEntries(tables.map((table, i) => [table, Number(row[`n${i}`] ?? -1)]));
}

export const CORE_TABLES = ['records', 'blind_indexes', 'audit_log', 'subject_keys'] as const;

/** A bearer for `purposes` and the key's id (for revocation and for audit actor refs). */
export async function apiKey(t: TestApp, purposes: readonly string[]): Promise<{ auth: string; id: string }> {
  const { key, info } = await t.runtime.apiKeys.create({ name: 'vault-suite', purposes });
  return { auth: `Bearer ${key.reveal()}`, id: info.id };
}

export const ALL_PURPOSES = ['account', 'fulfilment', 'support', 'fraud_prevention', 'marketing', 'analytics', 'legal_obligation'] as const;

let serial = 0;

/** Distinctive personal data for one customer; every string is unlikely to occur by chance. */
export function person(tag = `${++serial}`) {
  return {
    customer: {
      email: `ottilie.quenzel${tag}@marbach-example.org`,
      name: `Ottilie Quenzel-Marbach${tag}`,
      phone: '+49 151 2345 67' + String(10 + (serial % 90)).padStart(2, '0'),
      date_of_birth: '1984-03-07',
      locale: 'de-DE',
    },
    address: {
      line1: `Kastanienallee ${100 + serial}`,
      line2: 'Hinterhaus links',
      city: 'Wuppertal-Elberfeld',
      postal_code: '42103',
      region: 'Nordrhein-Westfalen',
      country: 'DE',
    },
    order: {
      number: `SO-${tag}-77812`,
      placed_at: '2025-05-04T10:11:12Z',
      currency: 'EUR',
      total: '129.90',
      status: 'paid',
      items: [
        { sku: 'TEE-BLK-M', name: 'Organic tee, black', quantity: 2, unit_price: '24.95' },
        { sku: 'MUG-001', name: 'Enamel mug', quantity: 1, unit_price: '80.00' },
      ],
      shipping_address: {
        name: `Ottilie Quenzel-Marbach${tag}`,
        line1: `Kastanienallee ${100 + serial}`,
        city: 'Wuppertal-Elberfeld',
        postal_code: '42103',
        country: 'DE',
      },
      billing_address: {
        name: `Quenzel Buchhaltung${tag}`,
        line1: 'Rechnungsweg 9',
        city: 'Solingen-Ohligs',
        postal_code: '42697',
        country: 'DE',
      },
    },
  };
}

/** The personal strings of a `person()` that must never be echoed by an error or a log listing. */
export function personalStrings(p: ReturnType<typeof person>): string[] {
  return [
    p.customer.email,
    p.customer.name,
    p.customer.phone.replace(/\s/g, ''),
    p.customer.phone,
    p.address.line1,
    p.address.line2,
    p.address.city,
    p.order.billing_address.name,
    p.order.billing_address.line1,
    p.order.billing_address.city,
  ];
}

/** Stores a customer with one address and one order; returns their ids. */
export async function seed(t: TestApp, auth: string, p = person()) {
  const c = await call(t, { method: 'POST', url: '/v1/customers', auth, payload: p.customer });
  expect(c.statusCode, c.body).toBe(201);
  const id = c.json<{ id: string }>().id;
  const a = await call(t, { method: 'POST', url: `/v1/customers/${id}/addresses`, auth, payload: p.address });
  expect(a.statusCode, a.body).toBe(201);
  const o = await call(t, { method: 'POST', url: `/v1/customers/${id}/orders`, auth, payload: p.order });
  expect(o.statusCode, o.body).toBe(201);
  return { p, id, addressId: a.json<{ id: string }>().id, orderId: o.json<{ id: string }>().id };
}

/** A well-formed id of `prefix` that names nothing. */
export function unknownId(prefix: 'cus' | 'ord' | 'adr'): string {
  return `${prefix}_${'0'.repeat(25)}1`;
}
