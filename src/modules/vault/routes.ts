import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { idempotencyKeyHeader } from '../../http/idempotency.ts';
import { actorOf } from '../../http/auth.ts';
import { responseShape, writeSchema, type Inventory, type SchemaOptions } from '../inventory/index.ts';
import type { CallContext, Values, VaultService } from './service.ts';
import { provenEntrySchema, provenEntryView, treeHeadSchema } from '../audit/routes.ts';

/**
 * The vault API that shop backends code against. Request bodies are validated by schemas built
 * from the inventory (an undeclared field is refused before anything runs); responses are shaped
 * by declared schemas, so nothing undeclared is ever serialised. Reads state their purpose in the
 * `Custos-Purpose` header.
 */
const idParam = (prefix: string) =>
  z.object({ id: z.string().regex(new RegExp(`^${prefix}_[0-9A-HJKMNP-TV-Z]{26}$`), `must be a ${prefix}_ id`) });
const purposeHeader = z.object({
  'custos-purpose': z.string().max(64).optional().meta({ description: 'Why this data is read: a purpose declared in the inventory.' }),
});
/** Creates honour Idempotency-Key (src/http/idempotency.ts). */
const createHeaders = purposeHeader.extend(idempotencyKeyHeader);
const idempotent = { idempotent: true };
const errorBody = z.object({
  error: z.object({ code: z.string(), message: z.string(), request_id: z.string() }).loose(),
});
const created = z.object({ id: z.string() });
const meta = { id: z.string(), created_at: z.string(), updated_at: z.string() };

function ctx(request: FastifyRequest): CallContext {
  const purpose = request.headers['custos-purpose'];
  return { actor: actorOf(request), purpose: typeof purpose === 'string' ? purpose : undefined, requestId: request.id };
}

export function registerVaultRoutes(app: FastifyInstance, deps: { vault: VaultService; inventory: Inventory; schemaOptions: SchemaOptions }) {
  const { vault, inventory } = deps;
  const r = app.withTypeProvider<ZodTypeProvider>();
  const customers = inventory.collections.get('customers')!;
  const addresses = inventory.collections.get('addresses')!;
  const orders = inventory.collections.get('orders')!;
  // Shapes come from the inventory at start-up, so their static type is only "a JSON object".
  const address = z.object({ ...meta, ...responseShape(addresses) }).meta({ id: 'Address' });
  const customer: z.ZodType = z.object({ ...meta, ...responseShape(customers), addresses: z.array(address) }).meta({ id: 'Customer' });
  const order: z.ZodType = z.object({ ...meta, customer_id: z.string(), ...responseShape(orders) }).meta({ id: 'Order' });
  const errors = { 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody };
  const security = [{ apiKey: [] }];

  r.post('/v1/customers', {
    config: idempotent,
    schema: {
      tags: ['customers'],
      summary: 'Store a customer',
      security,
      headers: createHeaders,
      body: writeSchema(customers, 'create', deps.schemaOptions).meta({ id: 'CustomerWrite' }),
      response: { 201: created, ...errors, 409: errorBody, 422: errorBody },
    },
    handler: async (request, reply) => reply.code(201).send(await vault.create(ctx(request), 'customers', undefined, request.body as Values)),
  });

  r.get('/v1/customers', {
    schema: {
      tags: ['customers'],
      summary: 'Find customers by exact email or phone (blind index)',
      security,
      headers: purposeHeader,
      querystring: z.object({ email: z.string().max(320).optional(), phone: z.string().max(40).optional() }),
      response: { 200: z.object({ data: z.array(customer) }), ...errors },
    },
    handler: async (request) => ({ data: await vault.findCustomers(ctx(request), request.query) }),
  });

  r.get('/v1/customers/:id', {
    schema: { tags: ['customers'], summary: 'Read a customer for a purpose', security, headers: purposeHeader, params: idParam('cus'), response: { 200: customer, ...errors } },
    handler: async (request) => vault.readCustomer(ctx(request), request.params.id),
  });

  r.patch('/v1/customers/:id', {
    schema: {
      tags: ['customers'],
      summary: 'Correct a customer (null clears a field)',
      security,
      headers: purposeHeader,
      params: idParam('cus'),
      body: writeSchema(customers, 'patch', deps.schemaOptions).meta({ id: 'CustomerPatch' }),
      response: { 200: z.object({ id: z.string(), updated_at: z.string() }), ...errors },
    },
    handler: async (request) => vault.updateCustomer(ctx(request), request.params.id, request.body as Values),
  });

  r.post('/v1/customers/:id/addresses', {
    config: idempotent,
    schema: {
      tags: ['customers'],
      summary: 'Add an address',
      security,
      headers: createHeaders,
      params: idParam('cus'),
      body: writeSchema(addresses, 'create', deps.schemaOptions).meta({ id: 'AddressWrite' }),
      response: { 201: created, ...errors, 409: errorBody, 422: errorBody },
    },
    handler: async (request, reply) =>
      reply.code(201).send(await vault.create(ctx(request), 'addresses', request.params.id, request.body as Values)),
  });

  r.post('/v1/customers/:id/orders', {
    config: idempotent,
    schema: {
      tags: ['orders'],
      summary: 'Record an order (purchase history)',
      security,
      headers: createHeaders,
      params: idParam('cus'),
      body: writeSchema(orders, 'create', deps.schemaOptions).meta({ id: 'OrderWrite' }),
      response: { 201: created, ...errors, 409: errorBody, 422: errorBody },
    },
    handler: async (request, reply) =>
      reply.code(201).send(await vault.create(ctx(request), 'orders', request.params.id, request.body as Values)),
  });

  r.get('/v1/customers/:id/orders', {
    schema: {
      tags: ['orders'],
      summary: "A customer's orders, newest first",
      security,
      headers: purposeHeader,
      params: idParam('cus'),
      querystring: z.object({
        limit: z.coerce.number().int().min(1).max(200).default(50),
        cursor: z.string().max(40).optional(),
      }),
      response: { 200: z.object({ data: z.array(order), next_cursor: z.string().nullable() }), ...errors },
    },
    handler: async (request) => vault.listOrders(ctx(request), request.params.id, request.query),
  });

  r.get('/v1/orders/:id', {
    schema: { tags: ['orders'], summary: 'Read an order for a purpose', security, headers: purposeHeader, params: idParam('ord'), response: { 200: order, ...errors } },
    handler: async (request) => vault.readOrder(ctx(request), request.params.id),
  });

  r.get('/v1/customers/:id/access-log', {
    schema: {
      tags: ['customers'],
      summary: "Who touched this customer's data, when, why and which fields (never values)",
      security,
      headers: purposeHeader,
      params: idParam('cus'),
      querystring: z.object({ limit: z.coerce.number().int().min(1).max(500).default(100), before: z.coerce.number().int().positive().optional() }),
      response: {
        200: z.object({ data: z.array(z.object({ ...provenEntrySchema, request_id: z.string().nullable() })), head: treeHeadSchema.nullable() }),
        ...errors,
      },
    },
    handler: async (request) => {
      const page = await vault.accessLog(ctx(request), request.params.id, request.query);
      return { data: page.entries.map((e) => ({ ...provenEntryView(e), request_id: e.requestId })), head: page.head };
    },
  });
}
