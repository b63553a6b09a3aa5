import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DIALECT, type TestDatabase } from '../support/store.ts';
import { apiClient, idOf } from './api-client.ts';
import { CHILD_TIMEOUT, childEnv, createKey, killChildren, newDatabase, rootKey, runCli, startServer } from './harness.ts';
import { rawDb, type RawDb } from './raw-db.ts';

/**
 * `custos audit verify` as an operator runs it: after real API traffic it passes; after a
 * database administrator changes one entry's purpose or fields, or deletes an entry, with raw
 * SQL, it fails and names the entry (its leaf and id). PCI DSS 4.0.1 10.3.4 (change detection on
 * audit logs).
 */
interface Entry {
  id: number;
  leaf: number;
  purpose: string | null;
  fields: string;
}

describe(`audit verify through the CLI (${TEST_DIALECT})`, { timeout: CHILD_TIMEOUT }, () => {
  let db: TestDatabase;
  let env: Record<string, string>;
  let raw: RawDb;
  let entries: Entry[];

  const verify = () => runCli(['audit', 'verify'], env);

  beforeAll(async () => {
    db = await newDatabase();
    env = childEnv(db, { CUSTOS_ROOT_KEY: rootKey(), CUSTOS_LOG_LEVEL: 'warn' });
    const key = await createKey(env, ['account', 'support', 'fulfilment']);
    const server = await startServer(env);
    const api = apiClient(server.url, key);
    for (let i = 0; i < 6; i++) {
      const created = await api.post('/v1/customers', { email: `audit-${i}@verify.example`, name: `Audit Subject ${i}`, phone: `+4930123450${i}` });
      expect(created.status).toBe(201);
      const id = idOf(created);
      expect((await api.get(`/v1/customers/${id}`, i % 2 === 0 ? 'account' : 'support')).status).toBe(200);
      expect((await api.patch(`/v1/customers/${id}`, { name: `Audit Subject ${i} (corrected)` })).status).toBe(200);
      expect((await api.get(`/v1/customers?email=audit-${i}@verify.example`, 'fulfilment')).status).toBe(200);
    }
    expect((await server.stop('SIGTERM')).code).toBe(0);
    raw = await rawDb(db);
    entries = (
      await raw.query<Entry>('SELECT l.id, t.leaf_index AS leaf, l.purpose, l.fields FROM audit_log l JOIN audit_tree_leaves t ON t.entry_id = l.id ORDER BY t.leaf_index')
    ).map((e) => ({ ...e, id: Number(e.id), leaf: Number(e.leaf) }));
  }, CHILD_TIMEOUT);
  afterAll(async () => {
    await raw?.close();
    await killChildren();
    await db.cleanup();
  });

  it('passes after API traffic', async () => {
    // Creates, reads, corrections and lookups, plus the CLI's own apikey.create.
    expect(entries.length).toBeGreaterThanOrEqual(25);
    const r = await verify();
    expect(r.stdout).toMatch(/^audit chain intact: 0 entries/);
    expect(r.stdout).toMatch(/audit tree intact: \d+ leaves, 0 entries waiting/);
    expect(r.code).toBe(0);
  });

  it("fails naming the entry whose purpose was changed, and passes again once it is put back", async () => {
    const target = entries.filter((e) => e.purpose === 'support')[0]!;
    expect(target).toBeDefined();
    await raw.query('UPDATE audit_log SET purpose = ? WHERE id = ?', ['fraud_prevention', target.id]);
    const broken = await verify();
    expect(broken.code).not.toBe(0);
    expect(broken.stdout + broken.stderr).toContain(`at leaf ${target.leaf}, entry ${target.id}:`);

    await raw.query('UPDATE audit_log SET purpose = ? WHERE id = ?', [target.purpose, target.id]);
    const restored = await verify();
    expect(restored.code, restored.stdout).toBe(0);
  });

  it('fails naming the entry whose fields were changed', async () => {
    const target = entries.find((e) => e.purpose === 'account' && e.fields.includes('email'))!;
    expect(target).toBeDefined();
    // Hiding that the email was read: the kind of edit that covers a leak's tracks.
    const fewer = JSON.stringify((JSON.parse(target.fields) as string[]).filter((f) => f !== 'email'));
    await raw.query('UPDATE audit_log SET fields = ? WHERE id = ?', [fewer, target.id]);
    const broken = await verify();
    expect(broken.code).not.toBe(0);
    expect(broken.stdout + broken.stderr).toContain(`at leaf ${target.leaf}, entry ${target.id}:`);
    await raw.query('UPDATE audit_log SET fields = ? WHERE id = ?', [target.fields, target.id]);
  });

  it('fails after the newest entry was deleted, naming its leaf, and passes once it is back', async () => {
    const last = entries.at(-1)!;
    const [row] = await raw.query<Record<string, unknown>>('SELECT * FROM audit_log WHERE id = ?', [last.id]);
    expect(row).toBeDefined();
    await raw.query('DELETE FROM audit_log WHERE id = ?', [last.id]);
    const broken = await verify();
    expect(broken.code).not.toBe(0);
    // Its leaf outlives the row: the entry is named by its leaf and the id the leaf records.
    expect(broken.stdout).toContain(`audit tree BROKEN at leaf ${last.leaf}, entry ${last.id}: the entry of this leaf is missing (deleted)`);

    const columns = Object.keys(row!);
    await raw.query(`INSERT INTO audit_log (${columns.join(', ')}) VALUES (${columns.map(() => '?').join(', ')})`, columns.map((c) => row![c]));
    const restored = await verify();
    expect(restored.code, restored.stdout).toBe(0);
  });

  it('fails after an entry was deleted, naming where', async () => {
    const target = entries[Math.floor(entries.length / 2)]!;
    await raw.query('DELETE FROM audit_log WHERE id = ?', [target.id]);
    const broken = await verify();
    expect(broken.code).not.toBe(0);
    expect(broken.stdout + broken.stderr).toContain(`at leaf ${target.leaf}, entry ${target.id}:`);
  });
});
