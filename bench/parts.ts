import { randomBytes } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { openRecord, parseStored, reveal } from '../src/modules/vault/codec.ts';
import { prepareDatabase } from './databases.ts';
import { openInProcess } from './in-process-pair.ts';
import { customerBody } from './workload.ts';

/**
 * `node bench/parts.ts [sqlite|postgres]`: times the parts of a protected read, lookup and create
 * in one process (no sockets, no load generator), one call at a time unless said otherwise, to
 * say where a request's time goes (CPU time of this process, which a busy machine inflates less
 * than wall time; on PostgreSQL the database server's own CPU is not in it): API key check, data query, audit append, decryption, policy,
 * the whole service call, and the whole HTTP route through `inject` for both servers.
 */
const kind = (process.argv[2] ?? 'sqlite') as 'sqlite' | 'postgres';
const N = Number(process.argv[3] ?? '1000');
const db = await prepareDatabase(kind, process.env.BENCH_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/test');
const out = (s: string) => process.stdout.write(`${s}\n`);

/**
 * SQLITE_BUSY is retried (and counted) so that the timings go on when a write transaction loses
 * a race with the audit log's own connection; the count is printed, it is a finding in itself.
 */
let busy = 0;
async function retryBusy<T>(fn: () => Promise<T>): Promise<T> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await fn();
    } catch (error) {
      if ((error as { code?: unknown }).code !== 'SQLITE_BUSY' || attempt >= 20) throw error;
      busy += 1;
    }
  }
}

async function time(label: string, n: number, fn: (i: number) => Promise<unknown> | unknown, concurrency = 1): Promise<number> {
  // Warm-up on indexes after the measured ones: a create's email (from its index) is never stored twice.
  for (let i = 0; i < Math.min(50, n); i++) await fn(n + i);
  const start = performance.now();
  const cpu = process.cpuUsage();
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) await fn(next++);
    }),
  );
  const us = ((performance.now() - start) * 1000) / n;
  const used = process.cpuUsage(cpu);
  const cpuUs = (used.user + used.system) / n;
  out(`${label.padEnd(64)} ${cpuUs.toFixed(0).padStart(6)} cpu µs/op ${us.toFixed(0).padStart(7)} wall µs/op${concurrency > 1 ? `  (${concurrency} in flight: ${Math.round(1e6 / us)} op/s)` : ''}`);
  return cpuUs;
}

try {
  const { runtime, app, twin, twinStore, close } = await openInProcess(db);
  const { key } = await runtime.apiKeys.create({ name: 'parts', purposes: ['support', 'account'] });
  const token = key.reveal();
  const auth = { authorization: `Bearer ${token}`, 'content-type': 'application/json' };
  const actor = { ref: 'apikey:parts', kind: 'apikey' as const, purposes: ['support', 'account'] };
  const ctx = (purpose: string) => ({ actor, purpose, requestId: randomBytes(8).toString('hex') });

  const ids: string[] = [];
  const twinIds: string[] = [];
  for (let i = 0; i < 500; i++) {
    const body = JSON.parse(customerBody('seed', i)) as Record<string, string>;
    ids.push((await retryBusy(() => runtime.vault.create(ctx('account'), 'customers', undefined, body))).id);
    const r = await twin.inject({ method: 'POST', url: '/v1/customers', payload: body });
    twinIds.push(r.json<{ id: string }>().id);
  }
  const id = (i: number) => ids[i % ids.length]!;
  const sdb = runtime.store.db;
  const customers = runtime.inventory.collections.get('customers')!;
  const row = await sdb.selectFrom('records').selectAll().where('id', '=', id(0)).executeTakeFirstOrThrow();
  const dek = (await runtime.keys.dekFor(sdb, id(0), false))!;
  const decision = await runtime.policy.decide(actor, 'support', id(0), customers);

  out(`# parts of a request, ${kind}, ${N} calls each (machine load ${(await import('node:os')).loadavg()[0]!.toFixed(1)})`);
  out('## read');
  await time('API key check: apiKeys.verify (1 query + HMAC)', N, () => runtime.apiKeys.verify(token));
  await time('records query (customers+addresses of a subject, Kysely)', N, (i) =>
    sdb.selectFrom('records').selectAll().where('subject_id', 'in', [id(i)]).where('collection', 'in', ['customers', 'addresses']).orderBy('id').execute(),
  );
  const compiled = sdb.selectFrom('api_keys').selectAll().where('id', '=', 'key_x').compile();
  await time('  the same kind of query, built by Kysely each time', N, () => sdb.selectFrom('api_keys').selectAll().where('id', '=', 'key_x').executeTakeFirst());
  await time('  the same query, compiled once (executeQuery)', N, () => sdb.executeQuery(compiled));
  await time('policy.decide (support, customers)', N, (i) => runtime.policy.decide(actor, 'support', id(i), customers));
  const place = { collection: row.collection, id: row.id, subjectId: row.subject_id, version: row.version };
  await time('parse + open the record + reveal 3 allowed fields (one AES-GCM open + mask)', N, () =>
    reveal(customers, openRecord(dek, place, parseStored(row.data), true), decision),
  );
  const entry = (i: number) => ({ actor: actor.ref, action: 'vault.read', subjectId: id(i), collection: 'customers', recordId: id(i), fields: ['email', 'name', 'phone'], purpose: 'support', outcome: 'success' as const, requestId: `r${i}` });
  await time('audit.append, alone (flush wait + insert + commit)', Math.min(N, 300), (i) => runtime.audit.append(entry(i)));
  await time('audit.append, group commit', N * 4, (i) => runtime.audit.append(entry(i)), 32);
  {
    await runtime.audit.chainPending();
    await Promise.all(Array.from({ length: 2000 }, (_, i) => runtime.audit.append(entry(i))));
    const before = process.cpuUsage();
    const t0 = performance.now();
    const n = await runtime.audit.chainPending();
    const used = process.cpuUsage(before);
    const per = (x: number) => (x / Math.max(1, n)).toFixed(0).padStart(6);
    const what = n === 0 ? '(the background pass chained them first)' : `(${n} chained)`;
    out(`${'audit chainer + tree builder, per entry (chainPending of 2000)'.padEnd(64)} ${per(used.user + used.system)} cpu µs/op ${per((performance.now() - t0) * 1000)} wall µs/op  ${what}`);
  }
  await time('vault.readCustomer (service, whole)', N, (i) => runtime.vault.readCustomer(ctx('support'), id(i)), 32);
  await time('twin select by id (Kysely)', N, (i) => twinStore.db.selectFrom('twin_customers').selectAll().where('id', '=', twinIds[i % twinIds.length]!).executeTakeFirst());
  const inject = (a: typeof app, url: string, headers: Record<string, string>) => a.inject({ method: 'GET', url, headers });
  const rd = { ...auth, 'custos-purpose': 'support' };
  await time('HTTP GET /v1/customers/:id protected (inject)', N, (i) => inject(app, `/v1/customers/${id(i)}`, rd), 32);
  await time('HTTP GET /v1/customers/:id twin (inject)', N, (i) => inject(twin, `/v1/customers/${twinIds[i % twinIds.length]!}`, rd), 32);
  await time('HTTP GET /health protected (inject: Fastify + helmet + hooks)', N, () => inject(app, '/health', {}), 32);
  await time('HTTP GET /health twin (inject: bare Fastify)', N, () => inject(twin, '/health', {}), 32);
  out('## lookup');
  await time('vault.findCustomers by email (service, whole)', N, (i) => runtime.vault.findCustomers(ctx('support'), { email: `seed-${i % 500}@shop.example` }), 32);
  await time('HTTP GET /v1/customers?email= protected (inject)', N, (i) => inject(app, `/v1/customers?email=seed-${i % 500}%40shop.example`, rd), 32);
  await time('HTTP GET /v1/customers?email= twin (inject)', N, (i) => inject(twin, `/v1/customers?email=seed-${i % 500}%40shop.example`, rd), 32);
  out('## create');
  const cn = Math.min(N, 400);
  await time('vault.create (service, whole; one transaction)', cn, (i) => retryBusy(() => runtime.vault.create(ctx('account'), 'customers', undefined, JSON.parse(customerBody('svc', i)) as Record<string, string>)), 32);
  await time('HTTP POST /v1/customers protected (inject)', cn, (i) => app.inject({ method: 'POST', url: '/v1/customers', headers: auth, payload: customerBody('p', i) }), 32);
  await time('HTTP POST /v1/customers twin (inject)', cn, (i) => twin.inject({ method: 'POST', url: '/v1/customers', headers: auth, payload: customerBody('t', i) }), 32);
  if (busy > 0) out(`(vault.create answered SQLITE_BUSY ${busy} times and was retried)`);
  await close();
} finally {
  await db.cleanup();
}
