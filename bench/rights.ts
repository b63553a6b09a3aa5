import { randomBytes } from 'node:crypto';
import type { Runtime } from '../src/runtime.ts';
import { inProcessCustos } from './in-process.ts';
import type { DbKind } from './options.ts';

/**
 * `node bench/rights.ts [sqlite|postgres] [orders]` (also `npm run bench -- --ops rights`): the
 * data-subject request work of issue 13, in one process through `inject` and the services.
 * - export: a customer with `orders` orders (10,000) downloads their export; wall time and CPU
 *   time until the last byte of the ZIP, its size, and the growth of the heap while it streams
 *   (flat memory: it should not grow with the number of orders). Target: < 1 s.
 * - erasure: `DELETE /v1/customers/{id}` of a customer with 1 order and of one with `orders`
 *   orders, wall and CPU time on the request path each, and their ratio (erasure never blocks
 *   on data size). Target: < 50 ms of work each.
 * Figures are read on a quiet machine; nothing here asserts a timing.
 */
const ACCOUNT_CTX = { actor: { ref: 'apikey:bench', kind: 'apikey' as const, purposes: ['account'] }, purpose: undefined, requestId: 'bench' };

export interface RightsBenchResult {
  kind: DbKind;
  orders: number;
  export: { ms: number; cpuMs: number; bytes: number; heapGrowthMiB: number };
  erasure: { one: { ms: number; cpuMs: number }; many: { ms: number; cpuMs: number } };
}

async function customerWith(runtime: Runtime, orders: number): Promise<string> {
  const { id } = await runtime.vault.create(ACCOUNT_CTX, 'customers', undefined, { email: `bench.${randomBytes(4).toString('hex')}@example.org`, name: 'Bench Customer' });
  const order = { placed_at: '2025-05-04T10:11:12Z', currency: 'EUR', total: '19.90', status: 'paid', items: [{ sku: 'TEE', name: 'Tee', quantity: 1, unit_price: '19.90' }] };
  for (let i = 0; i < orders; i += 200)
    await Promise.all(Array.from({ length: Math.min(200, orders - i) }, (_, j) => runtime.vault.create(ACCOUNT_CTX, 'orders', id, { ...order, number: `B-${i + j}` })));
  return id;
}

/** Wall and CPU milliseconds of `fn`. */
async function timed<T>(fn: () => Promise<T>): Promise<{ value: T; ms: number; cpuMs: number }> {
  const cpu = process.cpuUsage();
  const start = process.hrtime.bigint();
  const value = await fn();
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  const used = process.cpuUsage(cpu);
  return { value, ms, cpuMs: (used.user + used.system) / 1000 };
}

export async function benchRights(kind: DbKind, orders = 10_000, pgUrl = 'postgres://postgres@127.0.0.1:5432/test', log: (line: string) => void = () => undefined): Promise<RightsBenchResult> {
  const { runtime, app, close } = await inProcessCustos(kind, pgUrl, 'rights');
  try {
    const rights = `Bearer ${(await runtime.apiKeys.create({ name: 'bench', purposes: ['rights'] })).key.reveal()}`;
    log(`rights (${kind}): seeding a customer with ${orders} orders, and ones with 1`);
    const big = await customerWith(runtime, orders);
    const bigToErase = await customerWith(runtime, orders);
    const small = await customerWith(runtime, 1);
    await runtime.audit.chainPending();

    const filed = await app.inject({ method: 'POST', url: '/v1/rights/requests', headers: { authorization: rights }, payload: { kind: 'portability', customer_id: big } });
    const token = filed.json<{ export: { token: string } }>().export.token;
    globalThis.gc?.();
    const heapBefore = process.memoryUsage().heapUsed;
    let heapPeak = heapBefore;
    const exported = await timed(async () => {
      const { stream } = await runtime.exports.download(token, 'bench');
      let bytes = 0;
      for await (const chunk of stream) {
        bytes += (chunk as Buffer).length;
        heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
      }
      return bytes;
    });
    log(`  export of ${orders} orders: ${exported.ms.toFixed(0)} ms (cpu ${exported.cpuMs.toFixed(0)} ms), ${(exported.value / 1e6).toFixed(1)} MB`);

    const erase = async (id: string) =>
      timed(async () => {
        const res = await app.inject({ method: 'DELETE', url: `/v1/customers/${id}`, headers: { authorization: rights } });
        if (res.statusCode !== 202) throw new Error(`erasure answered ${res.statusCode}: ${res.body}`);
      });
    const one = await erase(small);
    const many = await erase(bigToErase);
    log(`  erasure: 1 order ${one.ms.toFixed(1)} ms (cpu ${one.cpuMs.toFixed(1)}), ${orders} orders ${many.ms.toFixed(1)} ms (cpu ${many.cpuMs.toFixed(1)})`);
    return {
      kind,
      orders,
      export: { ms: exported.ms, cpuMs: exported.cpuMs, bytes: exported.value, heapGrowthMiB: (heapPeak - heapBefore) / 2 ** 20 },
      erasure: { one: { ms: one.ms, cpuMs: one.cpuMs }, many: { ms: many.ms, cpuMs: many.cpuMs } },
    };
  } finally {
    await close();
  }
}

/** The results as a Markdown table (docs/benchmarks.md). */
export function rightsMarkdown(results: readonly RightsBenchResult[]): string {
  const lines = [
    '| database | export of N orders (target < 1 s) | export CPU | ZIP size | heap growth while streaming | erasure, 1 order | erasure, N orders (target < 50 ms each) |',
    '|---|---|---|---|---|---|---|',
  ];
  for (const r of results)
    lines.push(
      `| ${r.kind} (N = ${r.orders}) | ${r.export.ms.toFixed(0)} ms | ${r.export.cpuMs.toFixed(0)} ms | ${(r.export.bytes / 1e6).toFixed(1)} MB | ${r.export.heapGrowthMiB.toFixed(1)} MiB | ${r.erasure.one.ms.toFixed(1)} ms (cpu ${r.erasure.one.cpuMs.toFixed(1)}) | ${r.erasure.many.ms.toFixed(1)} ms (cpu ${r.erasure.many.cpuMs.toFixed(1)}) |`,
    );
  return lines.join('\n');
}

if (import.meta.main) {
  const kind: DbKind = process.argv[2] === 'postgres' ? 'postgres' : 'sqlite';
  const orders = Number(process.argv[3] ?? 10_000);
  const result = await benchRights(kind, orders, process.env.DATABASE_URL ?? undefined, (line) => process.stderr.write(`bench: ${line}\n`));
  process.stdout.write(`${rightsMarkdown([result])}\n`);
}
