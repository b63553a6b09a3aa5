import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Io } from '../../src/cli/io.ts';
import { main } from '../../src/cli/main.ts';
import { loadConfig } from '../../src/config/config.ts';
import { openRuntime, type Runtime } from '../../src/runtime.ts';
import { rootKey } from '../resilience/harness.ts';
import { testDatabase, TEST_DIALECT, type TestDatabase } from '../support/store.ts';

/**
 * `custos detection origin REQUEST_ID`: where a card request came from (PCI DSS 10.2.2), which
 * its audit entry names only by request id; an unknown id exits 1.
 */
describe(`custos detection origin (${TEST_DIALECT})`, () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  let runtime: Runtime;
  beforeAll(async () => {
    db = testDatabase();
    env = { ...db.env, CUSTOS_LOG_LEVEL: 'silent', CUSTOS_ROOT_KEY: rootKey() };
    runtime = await openRuntime(loadConfig(env), { background: false });
  });
  afterAll(async () => {
    await runtime?.close();
    await db?.cleanup();
  });

  it('prints the source, actor and time of each request id; an unknown one exits 1', async () => {
    const actor = { ref: 'apikey:key_01JZ0000000000000000000000', kind: 'apikey' as const, purposes: ['payments'] };
    await runtime.cards.tokenise({ actor, purpose: 'payments', requestId: 'req-origin-1', clientAddress: '192.0.2.44' }, { pan: '4111111111111111', exp_month: 5, exp_year: new Date().getUTCFullYear() + 2 });
    await runtime.detection.settle();
    const out: string[] = [];
    const err: string[] = [];
    const io: Io = { out: (l) => void out.push(l), err: (l) => void err.push(l), progress: () => undefined, done: () => undefined };
    expect(await main(['detection', 'origin', 'req-origin-1'], io, env)).toBe(0);
    expect(JSON.parse(out[0]!)).toMatchObject({ request_id: 'req-origin-1', source: '192.0.2.44', actor: actor.ref });
    expect(await main(['detection', 'origin', 'req-unknown'], io, env)).toBe(1);
    expect(err.at(-1)).toMatch(/no origin kept for req-unknown/);
  });
});
