import { randomBytes } from 'node:crypto';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/config.ts';
import { blindIndex } from '../../src/crypto/blind-index.ts';
import { rotateBlindIndex } from '../../src/crypto/blind-index-rotation.ts';
import { createLogger } from '../../src/kernel/logger.ts';
import { openRuntime, type Runtime } from '../../src/runtime.ts';
import { TEST_DIALECT, testDatabase, type TestDatabase } from '../support/store.ts';
import { SEED_ACTOR, seedCustomers } from '../resilience/seed.ts';
import { moduleBase, rotateServiceKey } from '../../src/crypto/service-keys.ts';
import { Secret } from '../../src/kernel/secret.ts';
import { deriveIncidentKey } from '../../src/modules/incidents/keys.ts';
import { deriveStaffKeys, openText, sealText } from '../../src/modules/staff/keys.ts';

/**
 * Service keys that rotate with what they protect. The blind-index key (`custos keys rotate --key
 * blind-index`): every blind index is rebuilt under the new version while lookups go on, writes
 * landing mid-rebuild — from a process that has not yet seen the new version — are indexed under
 * it, and once it ends an index row under the old version, put back, matches nothing.
 */
const dbs: TestDatabase[] = [];
const runtimes: Runtime[] = [];
afterEach(async () => {
  for (const r of runtimes.splice(0)) await r.close().catch(() => undefined);
});
afterAll(async () => {
  for (const d of dbs.splice(0)) await d.cleanup();
});
async function runtime(env: Record<string, string>): Promise<Runtime> {
  const r = await openRuntime(loadConfig(env), { background: false, logger: createLogger('silent') });
  runtimes.push(r);
  return r;
}
const ctx = { actor: SEED_ACTOR, purpose: 'account', requestId: 'blind-index' };
const found = async (r: Runtime, email: string) => (await r.vault.findCustomers(ctx, { email })).map((v) => v.id);

/** A rotation with batches of two, calling `during` after each batch of records and of accounts. */
function rotation(r: Runtime, during: (phase: 'records' | 'accounts', batch: number) => Promise<void>) {
  const batches = { records: 0, accounts: 0 };
  return rotateBlindIndex(
    {
      db: r.store.db,
      dialect: r.store.dialect,
      ring: r.ring,
      clock: r.clock,
      keys: r.keys,
      blindIndex: r.blindIndex,
      records: async (after, limit, target) => {
        const step = await r.vault.reindexBatch(after, limit, target);
        await during('records', ++batches.records);
        return step;
      },
      accounts: async (after, limit, target) => {
        const step = await r.identity.accounts.reindexBatch(after, limit, target);
        await during('accounts', ++batches.accounts);
        return step;
      },
      giveWayMs: 0,
    },
    2,
  );
}

describe(`blind-index key rotation (${TEST_DIALECT})`, () => {
  it('a customer created or edited mid-rebuild by a process that had not seen the new key is found afterwards; lookups work throughout; an old-version row alone matches nothing after', async () => {
    const d = testDatabase();
    dbs.push(d);
    const env = { ...d.env, CUSTOS_ROOT_KEY: randomBytes(32).toString('base64') };
    const rotator = await runtime(env);
    const seeded = (await seedCustomers(rotator, 8, 'bix', 1)).sort((a, b) => (a.id < b.id ? -1 : 1));
    const account = await rotator.identity.accounts.create({ realm: 'customer', email: 'before@bix.example' });
    // Two more processes, started before the rotation: their caches hold only the old version. One
    // looks up while the records are rebuilt; the other writes only after every record and account
    // was rebuilt (so only its writes can index what it writes under the new version), and has
    // read nothing since the rotation began.
    const other = await runtime(env);
    const stale = await runtime(env);
    expect(await found(stale, seeded[0]!.values.email)).toEqual([seeded[0]!.id]);
    expect(await found(other, seeded[0]!.values.email)).toEqual([seeded[0]!.id]);
    const oldKey = rotator.blindIndex.current().versions[0]!;
    expect(oldKey.version).toBe(1);

    let created: string | undefined;
    const midway: string[] = [];
    const result = await rotation(rotator, async (phase, batch) => {
      if (batch !== 1) return;
      if (phase === 'records') {
        // Mid-rebuild: lookups of customers already rebuilt and not yet rebuilt, in both processes.
        for (const r of [rotator, other]) for (const s of seeded) midway.push(...(await found(r, s.values.email)));
        return;
      }
      created = (await stale.vault.create({ ...ctx, purpose: undefined }, 'customers', undefined, { email: 'mid@bix.example', name: 'Mid Rebuild' })).id;
      await stale.vault.updateCustomer({ ...ctx, purpose: undefined }, seeded[7]!.id, { email: 'edited@bix.example' });
      await stale.identity.accounts.create({ realm: 'customer', email: 'mid-account@bix.example' });
      // Uniqueness holds across the two versions: the same email again is refused.
      await expect(stale.identity.accounts.create({ realm: 'customer', email: 'before@bix.example' })).rejects.toMatchObject({ code: 'IDENTITY_EMAIL_TAKEN' });
      await expect(stale.vault.create({ ...ctx, purpose: undefined }, 'customers', undefined, { email: seeded[1]!.values.email, name: 'Twin' })).rejects.toMatchObject({ code: 'VAULT_EMAIL_TAKEN' });
    });
    expect(result).toMatchObject({ version: 2, complete: true, destroyed: [1], failed: [] });
    expect(midway.sort()).toEqual([...seeded.map((s) => s.id), ...seeded.map((s) => s.id)].sort());

    for (const r of [rotator, other, stale, await runtime(env)]) {
      expect(await found(r, 'mid@bix.example')).toEqual([created]);
      expect(await found(r, 'edited@bix.example')).toEqual([seeded[7]!.id]);
      expect(await found(r, seeded[7]!.values.email)).toEqual([]);
      for (const s of seeded.slice(0, 7)) expect(await found(r, s.values.email)).toEqual([s.id]);
      expect((await r.identity.accounts.findByEmail('customer', 'before@bix.example'))?.id).toBe(account.account.id);
      expect(await r.identity.accounts.findByEmail('customer', 'mid-account@bix.example')).toBeDefined();
      expect(await r.vault.customerIdByEmail('mid@bix.example')).toBe(created);
    }
    const db = rotator.store.db;
    expect(await db.selectFrom('blind_indexes').select('record_id').where('key_version', '<>', 2).execute()).toEqual([]);
    expect((await db.selectFrom('service_keys').select('version').where('name', '=', 'blind-index').execute()).map((k) => k.version)).toEqual([2]);
    expect(await db.selectFrom('identity_accounts').select('id').where('email_index_next', 'is not', null).execute()).toEqual([]);

    // A row under the old version, put back alone (from a backup, say): it matches nothing.
    const victim = seeded[0]!;
    await db.deleteFrom('blind_indexes').where('record_id', '=', victim.id).execute();
    await db
      .insertInto('blind_indexes')
      .values({ collection: 'customers', field: 'email', digest: blindIndex(oldKey.key, 'customers', 'email', victim.values.email), record_id: victim.id, key_version: 1 })
      .execute();
    expect(await found(rotator, victim.values.email)).toEqual([]);
    expect(await found(other, victim.values.email)).toEqual([]);
  });
});

/**
 * `custos keys rotate --key identity|staff`: each module key rotates on its own. What was sealed
 * or MACed under the old version (account emails, recovery codes; staff and incident texts) still
 * opens and verifies after a restart, and what is written afterwards is under the new version.
 */
describe(`identity and staff key rotation (${TEST_DIALECT})`, () => {
  it('after rotating the identity and staff keys, old account emails, recovery codes and staff texts still open; new ones are sealed under the new version', async () => {
    const d = testDatabase();
    dbs.push(d);
    const env = { ...d.env, CUSTOS_ROOT_KEY: randomBytes(32).toString('base64') };
    const before = await runtime(env);
    const { account } = await before.identity.accounts.create({ realm: 'customer', email: 'old@module.example' });
    const codes = (await before.identity.recovery.regenerate(account.id)).reveal();
    const staffText = sealText(deriveStaffKeys({ base: moduleBase(before.rootKeys, 'staff') }).reportKey, 'aad-report', 'a threat report');
    const incidentText = sealText(deriveIncidentKey({ staffBase: moduleBase(before.rootKeys, 'staff') }), 'aad-incident', 'an incident');

    expect(await rotateServiceKey(before.store.db, before.ring, before.clock, 'identity')).toBe(2);
    expect(await rotateServiceKey(before.store.db, before.ring, before.clock, 'staff')).toBe(2);
    const after = await runtime(env);

    expect((await after.identity.accounts.findByEmail('customer', 'old@module.example'))?.email).toBe('old@module.example');
    expect((await after.identity.recovery.consume(account.id, new Secret(codes[0]!))).remaining).toBe(codes.length - 1);
    const staff = deriveStaffKeys({ base: moduleBase(after.rootKeys, 'staff') });
    expect(openText(staff.reportKey, 'aad-report', staffText)).toBe('a threat report');
    const incidents = deriveIncidentKey({ staffBase: moduleBase(after.rootKeys, 'staff') });
    expect(openText(incidents, 'aad-incident', incidentText)).toBe('an incident');

    // New writes: under version 2, which the old process (not restarted) does not hold.
    const fresh = await after.identity.accounts.create({ realm: 'customer', email: 'new@module.example' });
    const row = await after.store.db.selectFrom('identity_accounts').select('email_sealed').where('id', '=', fresh.account.id).executeTakeFirstOrThrow();
    expect(row.email_sealed.startsWith('v2.')).toBe(true);
    expect((await after.identity.accounts.findByEmail('customer', 'new@module.example'))?.email).toBe('new@module.example');
    const newText = sealText(staff.reportKey, 'aad-report', 'another report');
    expect(newText.startsWith('v2.')).toBe(true);
    expect(() => openText(deriveStaffKeys({ base: moduleBase(before.rootKeys, 'staff') }).reportKey, 'aad-report', newText)).toThrow();
    // A text moved to another place, or naming a version that does not exist, does not open.
    expect(() => openText(staff.reportKey, 'aad-elsewhere', staffText)).toThrow();
    expect(() => openText(staff.reportKey, 'aad-report', `v9.${newText.slice(3)}`)).toThrow();
  });
});
