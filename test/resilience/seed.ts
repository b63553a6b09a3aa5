import { sql } from 'kysely';
import { loadConfig } from '../../src/config/config.ts';
import { createLogger } from '../../src/kernel/logger.ts';
import type { Actor } from '../../src/modules/policy/service.ts';
import { openRuntime, type Runtime } from '../../src/runtime.ts';

/**
 * An in-process runtime on a child's environment (same database, same root key), for seeding and
 * for reading back with a cold key cache. Not a server: no background chainer.
 */
export async function localRuntime(env: Record<string, string>): Promise<Runtime> {
  return openRuntime(loadConfig(env), { background: false, logger: createLogger('silent') });
}

export const SEED_ACTOR: Actor = { ref: 'system:test-seed', kind: 'system', purposes: ['account'] };

export interface SeededCustomer {
  readonly id: string;
  readonly values: { email: string; name: string; date_of_birth: string };
}

/**
 * Stores `count` customers through the vault service (the same code path as the API). On SQLite
 * the seeding connection skips fsync (PRAGMA synchronous = OFF) to keep the suite fast; the
 * service under test opens its own connections with the normal settings.
 */
export async function seedCustomers(runtime: Runtime, count: number, tag: string, concurrency = 8): Promise<SeededCustomer[]> {
  if (runtime.store.dialect === 'sqlite') await sql`PRAGMA synchronous = OFF`.execute(runtime.store.db);
  const out: SeededCustomer[] = [];
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < count) {
        const k = next++;
        const values = {
          email: `${tag}-${k}@seed.example`,
          name: `Seeded ${tag} ${k}`,
          date_of_birth: `${1940 + (k % 60)}-0${1 + (k % 9)}-2${k % 9}`,
        };
        const { id } = await runtime.vault.create({ actor: SEED_ACTOR, purpose: undefined, requestId: `seed-${k}` }, 'customers', undefined, values);
        out.push({ id, values });
      }
    }),
  );
  if (runtime.store.dialect === 'sqlite') await sql`PRAGMA synchronous = FULL`.execute(runtime.store.db);
  return out;
}
