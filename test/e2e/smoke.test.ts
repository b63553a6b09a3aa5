import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { testApp, type TestApp } from '../support/app.ts';

describe('vault smoke: store, read by purpose, look up', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await testApp();
  });
  afterAll(async () => t.close());

  it('stores a customer and releases fields per purpose', async () => {
    const auth = await t.bearer(['account', 'fulfilment', 'support']);
    const created = await t.app.inject({
      method: 'POST',
      url: '/v1/customers',
      headers: { authorization: auth },
      payload: { email: 'Ada@Example.org', name: 'Ada Lovelace', phone: '+44 20 7946 0958', date_of_birth: '1985-12-10' },
    });
    expect(created.statusCode).toBe(201);
    const { id } = created.json<{ id: string }>();
    const fulfilment = await t.app.inject({ method: 'GET', url: `/v1/customers/${id}`, headers: { authorization: auth, 'custos-purpose': 'fulfilment' } });
    expect(fulfilment.statusCode).toBe(200);
    expect(fulfilment.json()).toMatchObject({ id, name: 'Ada Lovelace', email: 'ada@example.org' });
    expect(fulfilment.json()).not.toHaveProperty('date_of_birth');
    const support = await t.app.inject({ method: 'GET', url: `/v1/customers?email=ADA@example.org`, headers: { authorization: auth, 'custos-purpose': 'support' } });
    expect(support.statusCode).toBe(200);
    const [found] = support.json<{ data: Record<string, string>[] }>().data;
    expect(found?.email).toBe('a***@e***.org');
    expect(found?.phone).toMatch(/^\+44\*+58$/);
  });
});
