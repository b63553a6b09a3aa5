import type { Kysely } from 'kysely';
import type { Database } from '../../store/schema.ts';

/**
 * How many stored cards each brand has, among the given tokens or over the whole card vault: the
 * incident register names the card brands to notify (PCI DSS 4.0.1 12.10.1). Brand only — no BIN,
 * no last four, no token leaves this function.
 */
export async function cardBrands(db: Kysely<Database>, tokens: readonly string[] | 'all'): Promise<Record<string, number>> {
  const out: Record<string, number> = {};
  const add = (rows: readonly { brand: string | null; n: number | string | bigint }[]) => {
    for (const r of rows) {
      const brand = r.brand ?? 'unknown';
      out[brand] = (out[brand] ?? 0) + Number(r.n);
    }
  };
  const base = () => db.selectFrom('cards').select((eb) => ['brand', eb.fn.countAll<number>().as('n')]).where('deleted_at', 'is', null).groupBy('brand');
  if (tokens === 'all') add(await base().execute());
  else for (let i = 0; i < tokens.length; i += 500) add(await base().where('token', 'in', tokens.slice(i, i + 500)).execute());
  return Object.fromEntries(Object.entries(out).sort(([a], [b]) => a.localeCompare(b)));
}
