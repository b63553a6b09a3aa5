import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { exportZip } from '../src/modules/rights/export-document.ts';
import { exportSources } from '../src/modules/rights/export.ts';
import type { Runtime } from '../src/runtime.ts';
import { inProcessCustos } from './in-process.ts';
import type { DbKind } from './options.ts';

/**
 * `node bench/rights.ts [sqlite|postgres] [orders]` (also `npm run bench -- --ops rights`): the
 * data-subject request work of issue 13, in one process through `inject` and the services.
 * - export: a customer with `orders` orders (10,000) downloads their export; wall time and CPU
 *   time until the last byte of the ZIP, its size, and the growth of the heap while it streams
 *   (flat memory: it should not grow with the number of orders). Target: < 1 s. Measured with the
 *   access log's inclusion proofs (what a download carries) and without them (the same export
 *   built from the same sources, proofs left out), so their cost shows.
 * - erasure: `DELETE /v1/customers/{id}` of a customer with 1 order and of one with `orders`
 *   orders: wall and CPU time on the request path each (the request accepted: from then on
 *   nothing of the customer is released). Target: < 50 ms of work each, whatever the size.
 *   Then, behind the answer, the time from the DELETE until every held field is re-sealed under
 *   its hold key (`rights.erasure.held`) and until the data key is destroyed and the records gone
 *   (`rights.erasure.shredded`).
 * Figures are read on a quiet machine; nothing here asserts a timing.
 */
const ACCOUNT_CTX = { actor: { ref: 'apikey:bench', kind: 'apikey' as const, purposes: ['account'] }, purpose: undefined, requestId: 'bench' };

interface ExportFigures {
  ms: number;
  cpuMs: number;
  bytes: number;
  heapGrowthMiB: number;
}
interface ErasureFigures {
  /** The request path: DELETE until its 202. */
  ms: number;
  cpuMs: number;
  /** From the DELETE until the held fields are re-sealed, and until the key is destroyed. */
  heldMs: number;
  shreddedMs: number;
}

export interface RightsBenchResult {
  kind: DbKind;
  orders: number;
  export: ExportFigures;
  exportWithoutProofs: ExportFigures;
  erasure: { one: ErasureFigures; many: ErasureFigures };
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
    const warm = await customerWith(runtime, 1);
    await runtime.audit.chainPending();

    const filed = await app.inject({ method: 'POST', url: '/v1/rights/requests', headers: { authorization: rights }, payload: { kind: 'portability', customer_id: big } });
    const request = filed.json<{ id: string; kind: string; export: { token: string } }>();
    const streamed = async (open: () => Promise<Readable>): Promise<ExportFigures> => {
      globalThis.gc?.();
      const heapBefore = process.memoryUsage().heapUsed;
      let heapPeak = heapBefore;
      const run = await timed(async () => {
        let bytes = 0;
        for await (const chunk of await open()) {
          bytes += (chunk as Buffer).length;
          heapPeak = Math.max(heapPeak, process.memoryUsage().heapUsed);
        }
        return bytes;
      });
      return { ms: run.ms, cpuMs: run.cpuMs, bytes: run.value, heapGrowthMiB: (heapPeak - heapBefore) / 2 ** 20 };
    };
    const exported = await streamed(async () => (await runtime.exports.download(request.export.token, 'bench')).stream);
    const parts = { audit: runtime.audit, vault: runtime.vault, cards: runtime.cards, consent: runtime.consent, recipients: () => runtime.processors.list({ all: true }), inventory: runtime.inventory, controller: runtime.config.controller };
    const meta = { requestId: request.id, kind: request.kind, customerId: big, generatedAt: new Date() };
    const withoutProofs = await streamed(async () => exportZip(exportSources(parts, big, 'bench', { proofs: false }), meta));
    const line = (what: string, e: ExportFigures) => `  export of ${orders} orders ${what}: ${e.ms.toFixed(0)} ms (cpu ${e.cpuMs.toFixed(0)} ms), ${(e.bytes / 1e6).toFixed(1)} MB, heap +${e.heapGrowthMiB.toFixed(1)} MiB`;
    log(line('with proofs', exported));
    log(line('without proofs', withoutProofs));

    const erase = async (id: string): Promise<ErasureFigures> => {
      const start = Date.now();
      const answered = await timed(async () => {
        const res = await app.inject({ method: 'DELETE', url: `/v1/customers/${id}`, headers: { authorization: rights } });
        if (res.statusCode !== 202) throw new Error(`erasure answered ${res.statusCode}: ${res.body}`);
      });
      await runtime.erasure.idle();
      await runtime.audit.chainPending();
      const steps = await runtime.audit.forSubject(id, { limit: 20 });
      const at = (action: string) => Date.parse(steps.find((e) => e.action === action)?.at ?? 'x') - start;
      return { ms: answered.ms, cpuMs: answered.cpuMs, heldMs: at('rights.erasure.held'), shreddedMs: at('rights.erasure.shredded') };
    };
    await erase(warm); // the first erasure of a process pays for compiling its statements
    const one = await erase(small);
    const many = await erase(bigToErase);
    for (const [n, e] of [[1, one], [orders, many]] as const)
      log(`  erasure of ${n} order(s): request path ${e.ms.toFixed(1)} ms (cpu ${e.cpuMs.toFixed(1)}); held fields re-sealed after ${e.heldMs} ms, key destroyed after ${e.shreddedMs} ms`);
    return { kind, orders, export: exported, exportWithoutProofs: withoutProofs, erasure: { one, many } };
  } finally {
    await close();
  }
}

/** The results as a Markdown table (docs/benchmarks.md). */
export function rightsMarkdown(results: readonly RightsBenchResult[]): string {
  const lines = [
    '| database | export of N orders, with proofs (target < 1 s) | without proofs | ZIP size | heap growth while streaming | erasure request path, 1 order | erasure request path, N orders (target < 50 ms each) | N orders: held fields re-sealed / key destroyed after |',
    '|---|---|---|---|---|---|---|---|',
  ];
  const ms = (e: { ms: number; cpuMs: number }) => `${e.ms.toFixed(1)} ms (cpu ${e.cpuMs.toFixed(1)})`;
  for (const r of results)
    lines.push(
      `| ${r.kind} (N = ${r.orders}) | ${r.export.ms.toFixed(0)} ms (cpu ${r.export.cpuMs.toFixed(0)}) | ${r.exportWithoutProofs.ms.toFixed(0)} ms (cpu ${r.exportWithoutProofs.cpuMs.toFixed(0)}) | ${(r.export.bytes / 1e6).toFixed(1)} MB | ${r.export.heapGrowthMiB.toFixed(1)} MiB | ${ms(r.erasure.one)} | ${ms(r.erasure.many)} | ${r.erasure.many.heldMs} ms / ${r.erasure.many.shreddedMs} ms |`,
    );
  return lines.join('\n');
}

if (import.meta.main) {
  const kind: DbKind = process.argv[2] === 'postgres' ? 'postgres' : 'sqlite';
  const orders = Number(process.argv[3] ?? 10_000);
  const result = await benchRights(kind, orders, process.env.DATABASE_URL ?? undefined, (line) => process.stderr.write(`bench: ${line}\n`));
  process.stdout.write(`${rightsMarkdown([result])}\n`);
}
