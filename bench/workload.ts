import type { RequestSpec } from 'autocannon';
import type { Op } from './options.ts';
import type { Target } from './servers.ts';

/**
 * What the loads send: the same customers, requests and headers to both servers. Reads pick a
 * random seeded id, lookups a random seeded email, creates a new unique email each time.
 */
export interface Seeded {
  readonly ids: readonly string[];
  readonly emails: readonly string[];
}

const pad = (n: number, width: number) => String(n).padStart(width, '0');

export function customerBody(tag: string, i: number): string {
  return JSON.stringify({
    email: `${tag}-${i}@shop.example`,
    name: `Customer ${i} Example`,
    phone: `+44 20 7946 ${pad(i % 10_000, 4)}`,
    date_of_birth: `19${50 + (i % 50)}-${pad(1 + (i % 12), 2)}-${pad(1 + (i % 28), 2)}`,
    locale: i % 2 === 0 ? 'en-GB' : 'de-DE',
  });
}

/** Stores `count` customers through the API with a few requests in flight. */
export async function seed(target: Target, count: number, concurrency = 16): Promise<Seeded> {
  const ids: string[] = new Array<string>(count);
  const emails: string[] = new Array<string>(count);
  let next = 0;
  async function worker(): Promise<void> {
    while (next < count) {
      const i = next++;
      const body = customerBody('seed', i);
      const res = await fetch(`${target.child.url}/v1/customers`, {
        method: 'POST',
        headers: { ...target.headers, 'custos-purpose': 'account' },
        body,
      });
      if (res.status !== 201) throw new Error(`${target.child.name}: seeding answered ${res.status}: ${await res.text()}`);
      ids[i] = ((await res.json()) as { id: string }).id;
      emails[i] = `seed-${i}@shop.example`;
    }
  }
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { ids, emails };
}

const pick = <T>(items: readonly T[]): T => items[Math.floor(Math.random() * items.length)]!;

/** One autocannon request spec for an operation. `tag` keeps created emails unique across loads. */
export function requestFor(op: Op, target: Target, seeded: Seeded, tag: string): RequestSpec {
  if (op === 'read')
    return {
      method: 'GET',
      headers: { ...target.headers, 'custos-purpose': 'support' },
      setupRequest: (req) => ({ ...req, path: `/v1/customers/${pick(seeded.ids)}` }),
    };
  if (op === 'lookup')
    return {
      method: 'GET',
      headers: { ...target.headers, 'custos-purpose': 'support' },
      setupRequest: (req) => ({ ...req, path: `/v1/customers?email=${encodeURIComponent(pick(seeded.emails))}` }),
    };
  let n = 0;
  return {
    method: 'POST',
    path: '/v1/customers',
    headers: { ...target.headers, 'custos-purpose': 'account' },
    setupRequest: (req) => ({ ...req, body: customerBody(tag, n++) }),
  };
}

/** One request of each kind through fetch, checking status and shape before any load. */
export async function sanityCheck(target: Target, seeded: Seeded): Promise<void> {
  const h = { ...target.headers, 'custos-purpose': 'support' };
  const read = await fetch(`${target.child.url}/v1/customers/${seeded.ids[0]!}`, { headers: h });
  const readBody = (await read.json()) as { id?: string; name?: string };
  if (read.status !== 200 || readBody.id !== seeded.ids[0] || readBody.name !== 'Customer 0 Example')
    throw new Error(`${target.child.name}: read check failed (${read.status})`);
  const lookup = await fetch(`${target.child.url}/v1/customers?email=${encodeURIComponent(seeded.emails[1]!)}`, { headers: h });
  const found = (await lookup.json()) as { data?: { id: string }[] };
  if (lookup.status !== 200 || found.data?.length !== 1 || found.data[0]?.id !== seeded.ids[1])
    throw new Error(`${target.child.name}: lookup check failed (${lookup.status})`);
}
