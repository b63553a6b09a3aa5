import { luhnCheckDigit } from '../src/modules/cards/card-rules.ts';
import { inProcessCustos } from './in-process.ts';

/**
 * `npx node bench/cards.ts [sqlite|postgres] [requests]` (Node 24, as `npm run` uses): tokenise (`POST /v1/cards`) beside a customer
 * create (`POST /v1/customers`) on the same server, in one process through `inject`, in
 * alternating rounds; prints requests per second of each and the ratio (issue target: tokenise ≥
 * 0.8× a customer create). A ratio, never an assertion: speed is read, not tested.
 */
const kind = process.argv[2] === 'postgres' ? 'postgres' : 'sqlite';
const n = Number(process.argv[3] ?? 500);
const { runtime, app, close } = await inProcessCustos(kind, process.env.DATABASE_URL ?? 'postgres://postgres@127.0.0.1:5432/test', 'cards');
const payments = `Bearer ${(await runtime.apiKeys.create({ name: 'bench', purposes: ['payments'] })).key.reveal()}`;
const account = `Bearer ${(await runtime.apiKeys.create({ name: 'bench', purposes: ['account'] })).key.reveal()}`;
const year = new Date().getUTCFullYear() + 3;
let serial = 0;
const pan = () => {
  const body = `411111${String(serial++).padStart(9, '0')}`;
  return body + luhnCheckDigit(body);
};

async function rate(make: () => { url: string; auth: string; purpose?: string; payload: unknown }): Promise<number> {
  const start = process.hrtime.bigint();
  for (let i = 0; i < n; i++) {
    const r = make();
    const res = await app.inject({ method: 'POST', url: r.url, headers: { authorization: r.auth, ...(r.purpose === undefined ? {} : { 'custos-purpose': r.purpose }) }, payload: r.payload as Record<string, unknown> });
    if (res.statusCode !== 201) throw new Error(`${r.url} answered ${res.statusCode}`);
  }
  return n / (Number(process.hrtime.bigint() - start) / 1e9);
}

const tokenise = () => ({ url: '/v1/cards', auth: payments, purpose: 'payments', payload: { pan: pan(), exp_month: 6, exp_year: year, cardholder_name: 'Bench Holder' } });
const create = () => ({ url: '/v1/customers', auth: account, payload: { name: 'Bench Customer', email: `bench.${serial++}@example.org` } });
const cards: number[] = [];
const customers: number[] = [];
for (let round = 0; round < 3; round++) {
  cards.push(await rate(tokenise));
  customers.push(await rate(create));
}
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const c = median(cards);
const u = median(customers);
process.stdout.write(`${kind}: tokenise ${c.toFixed(0)} req/s, customer create ${u.toFixed(0)} req/s, ratio ${(c / u).toFixed(2)} (target ≥ 0.8)\n`);
await close();
