import Fastify, { type FastifyInstance } from 'fastify';
import { serializerCompiler, validatorCompiler, type ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { ID_PREFIX, newId } from '../../src/kernel/ids.ts';
import { loadInventory, normaliseEmail, responseShape, writeSchema } from '../../src/modules/inventory/index.ts';
import type { TwinStore, TwinTables } from './store.ts';

/**
 * The unprotected twin of the vault's customer API: Fastify 5 with the same Zod type provider,
 * the same request schemas (built from the same inventory, so validation and phone/email
 * normalisation cost the same) and the same JSON shapes, over a plain table. No API key, no
 * policy, no encryption, no blind index, no audit, no security headers, no rate limit.
 */
type Row = TwinTables['twin_customers'];

const FIELDS = ['email', 'name', 'phone', 'date_of_birth', 'locale'] as const;

function view(row: Row) {
  const out: Record<string, unknown> = { id: row.id, created_at: row.created_at, updated_at: row.updated_at };
  for (const f of FIELDS) if (row[f] !== null) out[f] = row[f];
  out.addresses = [];
  return out;
}

export async function buildTwinApp(store: TwinStore): Promise<FastifyInstance> {
  const { db } = store;
  const inventory = loadInventory();
  const customers = inventory.collections.get('customers')!;
  const addresses = inventory.collections.get('addresses')!;
  const meta = { id: z.string(), created_at: z.string(), updated_at: z.string() };
  const address = z.object({ ...meta, ...responseShape(addresses) });
  const customer: z.ZodType = z.object({ ...meta, ...responseShape(customers), addresses: z.array(address) });
  const body = writeSchema(customers, 'create', {});

  const app = Fastify({ logger: false, bodyLimit: 262_144, routerOptions: { ignoreTrailingSlash: true, maxParamLength: 100 } });
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  const r = app.withTypeProvider<ZodTypeProvider>();
  const notFound = z.object({ error: z.object({ code: z.string(), message: z.string() }) });

  app.get('/health', async () => ({ status: 'ok' }));

  r.post('/v1/customers', {
    schema: { body, response: { 201: z.object({ id: z.string() }) } },
    handler: async (request, reply) => {
      const values = request.body as Record<string, string | undefined>;
      const now = new Date();
      const at = now.toISOString();
      const id = newId(ID_PREFIX.customer, now.getTime());
      await db
        .insertInto('twin_customers')
        .values({
          id,
          email: values.email ?? '',
          name: values.name ?? null,
          phone: values.phone ?? null,
          date_of_birth: values.date_of_birth ?? null,
          locale: values.locale ?? null,
          created_at: at,
          updated_at: at,
        })
        .execute();
      return reply.code(201).send({ id });
    },
  });

  r.get('/v1/customers', {
    schema: {
      querystring: z.object({ email: z.string().max(320).optional(), phone: z.string().max(40).optional() }),
      response: { 200: z.object({ data: z.array(customer) }) },
    },
    handler: async (request) => {
      const email = request.query.email === undefined ? '' : normaliseEmail(request.query.email);
      const rows = await db.selectFrom('twin_customers').selectAll().where('email', '=', email).orderBy('id').limit(1000).execute();
      return { data: rows.map(view) };
    },
  });

  r.get('/v1/customers/:id', {
    schema: {
      params: z.object({ id: z.string().regex(/^cus_[0-9A-HJKMNP-TV-Z]{26}$/) }),
      response: { 200: customer, 404: notFound },
    },
    handler: async (request, reply) => {
      const row = await db.selectFrom('twin_customers').selectAll().where('id', '=', request.params.id).executeTakeFirst();
      if (row === undefined) return reply.code(404).send({ error: { code: 'NOT_FOUND', message: 'no customer with that id' } });
      return view(row);
    },
  });

  return app;
}
