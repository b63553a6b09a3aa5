import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { createLogger } from '../../src/kernel/logger.ts';
import type { Actor } from '../../src/modules/policy/service.ts';
import { runReseal } from '../../src/modules/vault/reseal.ts';
import type { CallContext } from '../../src/modules/vault/service.ts';
import { openRuntime, type Runtime } from '../../src/runtime.ts';
import { testDatabase, type TestDatabase } from '../support/store.ts';
import { toPerFieldFormat } from './legacy.ts';

/**
 * The re-seal is a compare-and-swap on the record version. Attack (a race, not an adversary): a
 * write lands between the moment the re-seal job read a record and the moment it stores the
 * record sealed again; storing unconditionally would put back the content it read, and the
 * write would be lost without a trace (its audit entry says it happened). The job must lose the
 * race instead, read the record again and leave the write's result.
 */
const actor: Actor = { ref: 'system:test', kind: 'system', purposes: ['account'] };
const ctx: CallContext = { actor, purpose: 'account', requestId: 'reseal-test' };

describe('re-seal against concurrent writes', () => {
  let db: TestDatabase;
  let runtime: Runtime;
  beforeAll(async () => {
    db = testDatabase();
    const env = { ...db.env, CUSTOS_ROOT_KEY: randomBytes(32).toString('base64'), CUSTOS_LOG_LEVEL: 'silent' };
    runtime = await openRuntime(loadConfig(env), { background: false, logger: createLogger('silent') });
  });
  afterAll(async () => {
    await runtime.close();
    await db.cleanup();
  });

  it('a write landing between the re-seal reading a record and storing it is never lost', async () => {
    const { id } = await runtime.vault.create(ctx, 'customers', undefined, { name: 'Before Write', email: 'race@reseal.example' });
    await toPerFieldFormat(runtime, [id]);
    const { db: kdb } = runtime.store;
    let raced = 0;
    const report = await runReseal(runtime.vault, {
      batch: 10,
      giveWayMs: 0,
      target: async (subjectId) => {
        // The job has read the row and asks for the key to seal under: the write lands now, once.
        if (subjectId === id && raced++ === 0) await runtime.vault.updateCustomer(ctx, id, { name: 'Written Meanwhile' });
        return runtime.keys.dekFor(kdb, subjectId, false);
      },
    });
    expect(raced).toBeGreaterThanOrEqual(1);
    expect(report.complete).toBe(true);
    const view = await runtime.vault.readCustomer(ctx, id);
    expect(view.name).toBe('Written Meanwhile');
    expect(view.email).toBe('race@reseal.example');
    const row = await kdb.selectFrom('records').select(['version', 'data']).where('id', '=', id).executeTakeFirstOrThrow();
    expect(row.data.startsWith('{"s":')).toBe(true);
    expect(row.version).toBe(2);
  });

  it('a per-field record reads before the re-seal and, re-sealed, keeps its record version', async () => {
    const { id } = await runtime.vault.create(ctx, 'customers', undefined, { name: 'Kept Version', email: 'kept@reseal.example' });
    await toPerFieldFormat(runtime, [id]);
    const fresh = await openRuntime(runtime.config, { background: false, logger: createLogger('silent') });
    try {
      expect((await fresh.vault.readCustomer(ctx, id)).name).toBe('Kept Version');
      const report = await runReseal(fresh.vault, { batch: 10, giveWayMs: 0, target: (s) => fresh.keys.dekFor(fresh.store.db, s, false) });
      expect(report.resealed).toBeGreaterThanOrEqual(1);
      expect((await fresh.vault.readCustomer(ctx, id)).name).toBe('Kept Version');
    } finally {
      await fresh.close();
    }
    const row = await runtime.store.db.selectFrom('records').select(['version']).where('id', '=', id).executeTakeFirstOrThrow();
    expect(row.version).toBe(1);
  });
});
