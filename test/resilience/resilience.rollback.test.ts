import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { CallContext } from '../../src/modules/vault/service.ts';
import { TEST_DIALECT, type TestDatabase } from '../support/store.ts';
import { CHILD_TIMEOUT, childEnv, newDatabase, rootKey, runCli } from './harness.ts';
import { rawDb } from './raw-db.ts';
import { localRuntime } from './seed.ts';

/**
 * Rollback of a whole record. Attack: someone with database access keeps a copy of a customer's
 * row (say, from a backup, before a correction of their address or a withdrawal) and later writes
 * it back, envelope and record version together. The envelope is genuine, so it opens; the audit
 * log, though, says the record's last write produced a later version. `custos audit verify
 * --records` compares each record's version with its last audited write and names the record.
 */
const ctx: CallContext = { actor: { ref: 'system:test', kind: 'system', purposes: ['account'] }, purpose: 'account', requestId: 'rollback' };

describe(`audit verify --records (${TEST_DIALECT})`, { timeout: CHILD_TIMEOUT }, () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  let id = '';
  let old: { data: string; version: number };

  beforeAll(async () => {
    db = await newDatabase();
    env = childEnv(db, { CUSTOS_ROOT_KEY: rootKey(), CUSTOS_LOG_LEVEL: 'warn' });
    const runtime = await localRuntime(env);
    try {
      for (let i = 0; i < 3; i++) await runtime.vault.create(ctx, 'customers', undefined, { name: `Bystander ${i}`, email: `b${i}@rollback.example` });
      id = (await runtime.vault.create(ctx, 'customers', undefined, { name: 'Old Name', email: 'old@rollback.example' })).id;
      await runtime.vault.updateCustomer(ctx, id, { name: 'Middle Name' });
      old = await runtime.store.db.selectFrom('records').select(['data', 'version']).where('id', '=', id).executeTakeFirstOrThrow();
      await runtime.vault.updateCustomer(ctx, id, { name: 'New Name', email: 'new@rollback.example' });
    } finally {
      await runtime.close();
    }
  }, CHILD_TIMEOUT);
  afterAll(async () => db.cleanup());

  it('passes when every record is at the version of its last audited write', async () => {
    const r = await runCli(['audit', 'verify', '--records'], env);
    expect(r.code, r.stdout + r.stderr).toBe(0);
    expect(r.stdout).toContain('records intact');
  });

  it('a record rolled back to an older envelope (row copied back with its version) is named', async () => {
    expect(old.version).toBe(2);
    const raw = await rawDb(db);
    try {
      await raw.query('UPDATE records SET data = ?, version = ? WHERE id = ?', [old.data, old.version, id]);
    } finally {
      await raw.close();
    }
    // The envelope is genuine: it opens, which is why the log has to tell.
    const runtime = await localRuntime(env);
    try {
      expect((await runtime.vault.readCustomer(ctx, id)).name).toBe('Middle Name');
    } finally {
      await runtime.close();
    }
    const r = await runCli(['audit', 'verify', '--records'], env);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`record ${id} is at version 2, its last audited write made version 3: rolled back to an older envelope`);
    expect(r.stdout).toContain('records BROKEN: 1');
    // Without --records the log itself is intact.
    expect((await runCli(['audit', 'verify'], env)).code).toBe(0);
  });
});
