import { randomBytes } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import { PassThrough } from 'node:stream';
import { join } from 'node:path';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/config.ts';
import { open } from '../../src/crypto/aead.ts';
import { rotateRoot } from '../../src/crypto/key-lifecycle.ts';
import { createKeyStore } from '../../src/crypto/key-store.ts';
import { deriveRootKeys, softwareRoot } from '../../src/crypto/keyring.ts';
import { loadServiceKeys, rotateServiceKey } from '../../src/crypto/service-keys.ts';
import { createLogger } from '../../src/kernel/logger.ts';
import { Secret } from '../../src/kernel/secret.ts';
import { verifyAuditLog } from '../../src/modules/audit/verify.ts';
import { verifyAuditTree } from '../../src/modules/audit/verify-tree.ts';
import { openRuntime, type Runtime } from '../../src/runtime.ts';
import { TEST_DIALECT, testDatabase, type TestDatabase } from '../support/store.ts';
import { SEED_ACTOR, seedCustomers } from '../resilience/seed.ts';
import { killChildren, tempDir } from '../resilience/harness.ts';
import { testApp } from '../support/app.ts';

/**
 * The key lifecycle (ADR 0002) on the suite's database: crypto-shredding that reaches copies of
 * the database, caches that follow a destruction made by another process, writes that refuse a
 * destroyed key, root rotation with each provider, service keys that keep their values across it,
 * and rotated audit keys that still verify what the old ones wrote.
 */
const dbs: TestDatabase[] = [];
const runtimes: Runtime[] = [];
afterEach(async () => {
  for (const r of runtimes.splice(0)) await r.close().catch(() => undefined);
});
afterAll(async () => {
  await killChildren(); // removes the temporary folders
  for (const d of dbs.splice(0)) await d.cleanup();
});

function newDb(): TestDatabase {
  const d = testDatabase();
  dbs.push(d);
  return d;
}
async function runtime(env: Record<string, string>): Promise<Runtime> {
  const r = await openRuntime(loadConfig(env), { background: false, logger: createLogger('silent') });
  runtimes.push(r);
  return r;
}
const b64 = () => randomBytes(32).toString('base64');
const ctx = { actor: SEED_ACTOR, purpose: 'account', requestId: 'lifecycle' };
const readText = async (r: Runtime, id: string) => JSON.stringify(await r.vault.readCustomer(ctx, id));

describe(`key lifecycle (${TEST_DIALECT})`, () => {
  it('a destroyed data key cannot be recovered from a copy of its records and key rows once its KEK is rotated and retired, even with the root key', async () => {
    const d = newDb();
    const root = b64();
    const r = await runtime({ ...d.env, CUSTOS_ROOT_KEY: root });
    const [victim, bystander] = await seedCustomers(r, 2, 'shred', 1);
    const db = r.store.db;
    // The attacker's backup: the victim's records and key rows, and every KEK row, as they were.
    const records = await db.selectFrom('records').selectAll().where('subject_id', '=', victim!.id).execute();
    const keyRows = await db.selectFrom('subject_keys').selectAll().where('subject_id', '=', victim!.id).execute();
    expect(records.length).toBeGreaterThan(0);
    expect(keyRows).toHaveLength(1);
    expect(await readText(r, victim!.id)).toContain(victim!.values.email);

    expect(await r.keys.destroy(victim!.id)).toBe(1);
    const target = await r.keys.addKekVersion();
    while ((await r.keys.rewrapBatch(target, 100)) > 0);
    expect(await r.keys.retire()).toEqual([keyRows[0]!.kek_version]);

    // Restore the copied key row: the KEK it names is gone, and no KEK left (nor the root) opens it.
    await db.insertInto('subject_keys').values(keyRows[0]!).execute();
    await expect(r.keys.dekFor(db, victim!.id, false)).rejects.toThrow(/KEK version 1 is missing/);
    const ring = softwareRoot(Buffer.from(root, 'base64'));
    const keks = await db.selectFrom('keks').selectAll().execute();
    for (const k of keks) {
      const raw = ring.unwrap(k.wrapped, `custos:kek|${k.version}`);
      expect(raw).toBeDefined();
      const { createSecretKey } = await import('node:crypto');
      expect(open(createSecretKey(raw!), Buffer.from(keyRows[0]!.wrapped, 'base64url'), `custos:dek|${victim!.id}|${k.version}|1`)).toBeUndefined();
    }
    // A fresh process with the root key releases nothing of the victim; the bystander still reads.
    const fresh = await runtime({ ...d.env, CUSTOS_ROOT_KEY: root });
    await fresh.keys.destroy(victim!.id);
    const after = await readText(fresh, victim!.id).catch((e: unknown) => String(e));
    expect(after).not.toContain(victim!.values.email);
    expect(after).not.toContain(victim!.values.name);
    expect(await readText(fresh, bystander!.id)).toContain(bystander!.values.email);
  });

  it("a data key destroyed by another process is no longer served from this process's cache", async () => {
    const d = newDb();
    const env = { ...d.env, CUSTOS_ROOT_KEY: b64() };
    const server = await runtime(env);
    const [c] = await seedCustomers(server, 1, 'cache', 1);
    expect(await readText(server, c!.id)).toContain(c!.values.email); // cached now
    const other = await runtime(env);
    await other.keys.destroy(c!.id);
    // SQLite: the very next read sees the generation its own statement read with the rows.
    if (TEST_DIALECT === 'sqlite') expect(await readText(server, c!.id)).not.toContain(c!.values.email);
    // PostgreSQL: the NOTIFY arrives once the destruction commits.
    let text = '';
    for (let i = 0; i < 100; i++) {
      text = await readText(server, c!.id).catch((e: unknown) => String(e));
      if (!text.includes(c!.values.email)) break;
      await new Promise((res) => setTimeout(res, 20));
    }
    expect(text).not.toContain(c!.values.email);
  });

  it('a read in flight while its data key is destroyed does not put the destroyed key back in the cache', async () => {
    const d = newDb();
    const env = { ...d.env, CUSTOS_ROOT_KEY: b64() };
    const r = await runtime(env);
    const other = await runtime(env); // the process that destroys the key (an erasure, a sweep)
    const [c, warm] = await seedCustomers(r, 2, 'inflight', 1);
    // A store of its own whose reads of key rows can be held after the row was read.
    let held: { reached: () => void; release: Promise<void> } | undefined;
    const keyRowReads = new WeakSet<object>();
    const gated = r.store.db.withPlugin({
      transformQuery(args) {
        if (args.node.kind === 'SelectQueryNode' && JSON.stringify(args.node.from).includes('"subject_keys"')) keyRowReads.add(args.queryId);
        return args.node;
      },
      async transformResult(args) {
        const gate = held;
        if (gate !== undefined && keyRowReads.has(args.queryId)) {
          held = undefined;
          gate.reached();
          await gate.release;
        }
        return args.result;
      },
    });
    const keys = createKeyStore({ db: r.store.db, ring: r.ring, clock: r.clock, store: r.store, database: r.config.database });
    try {
      await keys.init();
      expect(await keys.dekFor(r.store.db, warm!.id, false)).toBeDefined();
      await new Promise((res) => setTimeout(res, 200)); // PostgreSQL: the LISTEN connection is up, caches in use
      let release!: () => void;
      const reached = new Promise<void>((res) => {
        held = { reached: res, release: new Promise<void>((go) => (release = go)) };
      });
      const inFlight = keys.dekVersion(gated, c!.id, 1);
      await reached; // the row was read, the answer not yet handed back
      expect(await other.keys.destroy(c!.id)).toBe(1);
      // Let the destruction's NOTIFY (PostgreSQL) arrive before the read completes.
      await new Promise((res) => setTimeout(res, 200));
      release();
      expect(await inFlight).toBeDefined();
      expect(await keys.dekVersion(r.store.db, c!.id, 1)).toBeUndefined();
      expect(await keys.dekFor(r.store.db, c!.id, false)).toBeUndefined();
    } finally {
      await keys.close();
    }
  });

  it('customers are still created after the KEK this process minted under was rotated and retired, here or by another process', async () => {
    const d = newDb();
    const env = { ...d.env, CUSTOS_ROOT_KEY: b64() };
    const r = await runtime(env);
    await seedCustomers(r, 1, 'before-retire', 1); // the process now holds the current KEK version
    const rotateAndRetire = async (by: Runtime) => {
      const target = await by.keys.addKekVersion();
      while ((await by.keys.rewrapBatch(target, 100)) > 0);
      expect((await by.keys.retire()).length).toBeGreaterThan(0);
    };
    await rotateAndRetire(r); // as the retention sweep does inside a server
    const [here] = await seedCustomers(r, 1, 'after-retire-here', 1);
    expect(await readText(r, here!.id)).toContain(here!.values.email);
    const other = await runtime(env);
    await rotateAndRetire(other);
    await new Promise((res) => setTimeout(res, 200)); // PostgreSQL: the change's NOTIFY has arrived
    const [there] = await seedCustomers(r, 1, 'after-retire-there', 1);
    expect(await readText(r, there!.id)).toContain(there!.values.email);
  });

  it('destroying a data key forgets versions this process read only by their number', async () => {
    const d = newDb();
    const r = await runtime({ ...d.env, CUSTOS_ROOT_KEY: b64() });
    const [c] = await seedCustomers(r, 1, 'byversion', 1);
    const keys = createKeyStore({ db: r.store.db, ring: r.ring, clock: r.clock, store: r.store, database: r.config.database });
    try {
      await keys.init();
      await keys.dekFor(r.store.db, c!.id, false);
      await new Promise((res) => setTimeout(res, 200)); // PostgreSQL: the LISTEN connection is up, caches in use
      await keys.addDekVersion(c!.id);
      await new Promise((res) => setTimeout(res, 200)); // PostgreSQL: that change's NOTIFY has emptied the caches
      expect(await keys.dekVersion(r.store.db, c!.id, 1)).toBeDefined(); // cached by version, never as the current one
      expect(await keys.destroy(c!.id)).toBe(2);
      expect(await keys.dekVersion(r.store.db, c!.id, 1)).toBeUndefined();
    } finally {
      await keys.close();
    }
  });

  it('a write inside a transaction gets no data key for a subject whose key was destroyed, even while it is cached', async () => {
    const d = newDb();
    const r = await runtime({ ...d.env, CUSTOS_ROOT_KEY: b64() });
    const [c] = await seedCustomers(r, 1, 'write', 1);
    expect(await r.keys.dekFor(r.store.db, c!.id, false)).toBeDefined();
    await r.store.db.deleteFrom('subject_keys').where('subject_id', '=', c!.id).execute(); // behind the cache's back
    const inTx = await r.store.db.transaction().execute((tx) => r.keys.dekFor(tx, c!.id, false));
    expect(inTx).toBeUndefined();
  });

  it('serves every version of a data key, and new versions are the current one', async () => {
    const d = newDb();
    const r = await runtime({ ...d.env, CUSTOS_ROOT_KEY: b64() });
    const [c] = await seedCustomers(r, 1, 'versions', 1);
    const v1 = await r.keys.dekFor(r.store.db, c!.id, false);
    expect(await r.keys.addDekVersion(c!.id)).toBe(2);
    const current = await r.keys.dekFor(r.store.db, c!.id, false);
    expect(current?.version).toBe(2);
    const old = await r.keys.dekVersion(r.store.db, c!.id, 1);
    expect(old?.key.export().equals(v1!.key.export())).toBe(true);
    expect(current?.key.export().equals(v1!.key.export())).toBe(false);
    expect(await r.keys.destroy(c!.id)).toBe(2);
    expect(await r.keys.dekVersion(r.store.db, c!.id, 1)).toBeUndefined();
  });

  it('a database keyed before service keys were stored keeps the root-derived values as their first versions', async () => {
    const d = newDb();
    const root = randomBytes(32);
    const r = await runtime({ ...d.env, CUSTOS_ROOT_KEY: root.toString('base64') });
    await r.store.db.deleteFrom('service_keys').execute();
    await r.store.db.insertInto('key_state').values({ name: 'root-derived', value: 1 }).execute();
    const keys = await loadServiceKeys(r.store.db, r.ring, r.clock);
    const legacy = deriveRootKeys(new Secret(root));
    expect(keys.blindIndex.export().equals(legacy.blindIndex.export())).toBe(true);
    expect(keys.apiKeyHash.export().equals(legacy.apiKeyHash.export())).toBe(true);
    expect(keys.auditMac.export().equals(legacy.auditMac.export())).toBe(true);
    expect(keys.auditSigning.keyId).toBe(legacy.auditSigning.keyId);
  });

  it('rotates the root given as CUSTOS_ROOT_KEY with the old one in CUSTOS_ROOT_KEY_PREVIOUS; afterwards only the new root opens the data', async () => {
    const d = newDb();
    const oldRoot = b64();
    const newRoot = b64();
    const first = await runtime({ ...d.env, CUSTOS_ROOT_KEY: oldRoot });
    const [c] = await seedCustomers(first, 1, 'root', 1);
    const before = first.rootKeys.blindIndex.export();
    await first.close();

    const during = await runtime({ ...d.env, CUSTOS_ROOT_KEY: newRoot, CUSTOS_ROOT_KEY_PREVIOUS: oldRoot });
    expect(await readText(during, c!.id)).toContain(c!.values.email);
    const result = await rotateRoot({ db: during.store.db, keys: during.keys, ring: during.ring }, 1);
    expect(result.rewrapped).toBeGreaterThan(6);
    await during.close();

    const after = await runtime({ ...d.env, CUSTOS_ROOT_KEY: newRoot });
    expect(await readText(after, c!.id)).toContain(c!.values.email);
    expect(after.rootKeys.blindIndex.export().equals(before)).toBe(true);
    await after.close();
    await expect(runtime({ ...d.env, CUSTOS_ROOT_KEY: oldRoot })).rejects.toThrow(ConfigError);
    await expect(runtime({ ...d.env, CUSTOS_ROOT_KEY: oldRoot })).rejects.toThrow(/CUSTOS_ROOT_KEY/);
  });

  it('rotates the root of the keyring file: a new root, the old one kept until every key is re-wrapped, then dropped', async () => {
    const d = newDb();
    const env = { ...d.env };
    const r = await runtime(env);
    const [c] = await seedCustomers(r, 1, 'ring', 1);
    const file = join(d.dir, 'keyring.json');
    const before = JSON.parse(readFileSync(file, 'utf8')) as { root_key: string };
    const result = await rotateRoot({ db: r.store.db, keys: r.keys, ring: r.ring }, 2);
    expect(result.started).toBe(true);
    const after = JSON.parse(readFileSync(file, 'utf8')) as { root_key: string; previous?: unknown };
    expect(after.root_key).not.toBe(before.root_key);
    expect(after.previous).toBeUndefined();
    await r.close();
    const again = await runtime(env);
    expect(await readText(again, c!.id)).toContain(c!.values.email);
  });

  it('refuses a root key file inside the data folder', () => {
    const d = newDb();
    expect(() => loadConfig({ ...d.env, CUSTOS_ROOT_KEY_FILE: join(d.dir, 'root.key') })).toThrow(/CUSTOS_ROOT_KEY_FILE: must lie outside CUSTOS_DATA_DIR/);
  });

  it('a rotated audit MAC and signing key still verify the entries and checkpoints the old ones wrote', async () => {
    const d = newDb();
    const env = { ...d.env, CUSTOS_ROOT_KEY: b64() };
    const r = await runtime(env);
    await seedCustomers(r, 3, 'audit', 1);
    await r.audit.chainPending();
    await rotateServiceKey(r.store.db, r.ring, r.clock, 'audit-mac');
    await rotateServiceKey(r.store.db, r.ring, r.clock, 'audit-signing');
    await r.close();
    const next = await runtime(env);
    expect(next.rootKeys.auditMacPrevious).toHaveLength(1);
    await seedCustomers(next, 3, 'audit2', 1);
    await next.audit.chainPending();
    const report = await verifyAuditLog({ db: next.store.db, keys: next.rootKeys });
    expect(report).toMatchObject({ ok: true });
  });

  it('an API key made before the API-key hash key rotated still verifies afterwards, and one made after verifies too', async () => {
    const d = newDb();
    const env = { ...d.env, CUSTOS_ROOT_KEY: b64() };
    const r = await runtime(env);
    const before = (await r.apiKeys.create({ name: 'before', purposes: ['account'] })).key.reveal();
    expect(await rotateServiceKey(r.store.db, r.ring, r.clock, 'api-key-hash')).toBe(2);
    await r.close();
    const next = await runtime(env);
    const after = (await next.apiKeys.create({ name: 'after', purposes: ['account'] })).key.reveal();
    expect((await next.apiKeys.verify(before)).name).toBe('before');
    expect((await next.apiKeys.verify(after)).name).toBe('after');
    await expect(next.apiKeys.verify(`${after.slice(0, -4)}AAAA`)).rejects.toMatchObject({ code: 'APIKEY_INVALID' });
  });

  it('reads the root from CUSTOS_ROOT_KEY_FILE and rotates it with the old file in CUSTOS_ROOT_KEY_PREVIOUS_FILE', async () => {
    const d = newDb();
    const secrets = tempDir('custos-secrets-');
    const oldFile = join(secrets, 'root-old');
    const newFile = join(secrets, 'root-new');
    writeFileSync(oldFile, `${b64()}\n`, { mode: 0o400 });
    writeFileSync(newFile, `${b64()}\n`, { mode: 0o400 });
    const first = await runtime({ ...d.env, CUSTOS_ROOT_KEY_FILE: oldFile });
    expect(first.ring.name).toContain(oldFile);
    const [c] = await seedCustomers(first, 1, 'file', 1);
    await first.close();
    const during = await runtime({ ...d.env, CUSTOS_ROOT_KEY_FILE: newFile, CUSTOS_ROOT_KEY_PREVIOUS_FILE: oldFile });
    await rotateRoot({ db: during.store.db, keys: during.keys, ring: during.ring }, 50);
    await during.close();
    const after = await runtime({ ...d.env, CUSTOS_ROOT_KEY_FILE: newFile });
    expect(await readText(after, c!.id)).toContain(c!.values.email);
    await expect(runtime({ ...d.env, CUSTOS_ROOT_KEY_FILE: oldFile })).rejects.toThrow(/CUSTOS_ROOT_KEY_FILE/);
  });

  it('the server warns at start when the root key lies in the keyring file beside the data, and not with CUSTOS_ROOT_KEY', async () => {
    const logs = (): { stream: PassThrough; text: () => string } => {
      const stream = new PassThrough();
      let text = '';
      stream.on('data', (b: Buffer) => (text += b.toString('utf8')));
      return { stream, text: () => text };
    };
    const embedded = logs();
    const a = await testApp({ env: { CUSTOS_ROOT_KEY: '' }, logStream: embedded.stream });
    await a.close();
    expect(embedded.text()).toMatch(/the root key lies in the keyring file beside the data/);
    const given = logs();
    const b = await testApp({ logStream: given.stream });
    await b.close();
    expect(given.text()).not.toMatch(/keyring file beside the data/);
  });

  it('a process started before the audit MAC key rotated leaves entries MAC-ed under the new version pending instead of rejecting them', async () => {
    const d = newDb();
    const env = { ...d.env, CUSTOS_ROOT_KEY: b64() };
    const old = await runtime(env);
    await rotateServiceKey(old.store.db, old.ring, old.clock, 'audit-mac');
    const fresh = await runtime(env);
    await seedCustomers(fresh, 1, 'newmac', 1); // entries MAC-ed under v2
    const report = await old.audit.chainPending();
    expect(report).toBe(0);
    const rejected = await old.store.db.selectFrom('audit_log').select('id').where('rejected', 'is not', null).execute();
    expect(rejected).toEqual([]);
    await fresh.audit.chainPending();
    expect(await verifyAuditLog({ db: fresh.store.db, keys: fresh.rootKeys })).toMatchObject({ ok: true });
    // The tree verifies (it fails on any refused entry): entries under either MAC key version were admitted.
    expect(await verifyAuditTree({ db: fresh.store.db, keys: fresh.rootKeys })).toMatchObject({ ok: true });
  });
});
