import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AuthTest } from '../identity/helpers.ts';
import { seed } from '../vault/helpers.ts';
import { apiCall, manyOrders, parseCsv, rightsApp, unzip } from './helpers.ts';

/**
 * A customer with 10,000 orders exports completely and correctly (every order once, in the JSON
 * document and in the CSV, values intact), on SQLite and PostgreSQL. How fast is bench/rights.ts's
 * business, never a test's.
 */
const ORDERS = 10_000;
let t: AuthTest;
let rights: string;
let shop: string;
beforeAll(async () => {
  ({ t, rights, shop } = await rightsApp());
});
afterAll(async () => t.close());

describe('a customer with 10,000 orders', () => {
  it('exports every order once, in the JSON document and in orders.csv', { timeout: 600_000 }, async () => {
    const { id, orderId } = await seed(t, shop);
    const ids = await manyOrders(t, id, ORDERS - 1);
    const view = (await apiCall(t)('POST', '/v1/rights/requests', rights, { kind: 'portability', customer_id: id })).json<{ export: { token: string } }>();
    const res = await t.app.inject({ method: 'POST', url: '/v1/exports/download', payload: { token: view.export.token } });
    expect(res.statusCode).toBe(200);
    const files = await unzip(res.rawPayload);

    const doc = JSON.parse(files.get('export.json')!) as { collections: { orders: { id: string; number: string; total: string }[] }; sources: { collection: string; writes: number }[]; access_log: unknown[] };
    const orders = doc.collections.orders;
    expect(orders).toHaveLength(ORDERS);
    expect(new Set(orders.map((o) => o.id))).toEqual(new Set([orderId, ...ids]));
    const sample = orders.find((o) => o.number === 'SO-004321');
    expect(sample?.total).toBe('321.50');
    expect(doc.sources.filter((s) => s.collection === 'orders').reduce((n, s) => n + s.writes, 0)).toBe(ORDERS);
    expect(doc.access_log.length).toBeGreaterThan(ORDERS);

    const csv = parseCsv(files.get('csv/orders.csv')!);
    expect(csv).toHaveLength(ORDERS + 1);
    const number = csv[0]!.indexOf('number');
    expect(new Set(csv.slice(1).map((r) => r[number])).size).toBe(ORDERS);
  });
});
