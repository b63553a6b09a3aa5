import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import type { Io } from '../../src/cli/io.ts';
import { createRetentionService } from '../../src/modules/retention/service.ts';
import { codeOf, type AuthTest } from '../identity/helpers.ts';
import { seed } from '../vault/helpers.ts';
import { apiCall, rightsApp } from './helpers.ts';

/**
 * The retention sweep on SQLite and PostgreSQL: holds shredded when their period ends, request
 * records purged after 24 months, a dry run that changes nothing, one sweeper at a time, the CLI.
 */
let t: AuthTest;
let rights: string;
let shop: string;
let call: ReturnType<typeof apiCall>;
beforeAll(async () => {
  ({ t, rights, shop } = await rightsApp());
  call = apiCall(t);
});
afterAll(async () => t.close());

const heldOf = async (id: string) =>
  (await call('GET', `/v1/customers/${id}/held-records`, shop, undefined, { 'custos-purpose': 'legal_obligation' })).json<{ data: unknown[] }>().data;
const holdKeys = async (id: string) =>
  (await t.runtime.store.db.selectFrom('subject_keys').select('subject_id').where('subject_id', 'like', `hold:${id}:%`).execute()).length;

describe('retention sweep', () => {
  it('keeps holds and request records until their time; then a dry run counts, and a real run shreds and purges', async () => {
    const { id } = await seed(t, shop);
    const erased = (await call('DELETE', `/v1/customers/${id}`, rights)).json<{ id: string }>();
    expect(await heldOf(id)).toHaveLength(2);

    // 23 months later: nothing is due (the hold runs to 2034-12-31, request records 24 months).
    t.clock.set(new Date('2028-02-01T10:00:00Z'));
    expect(await t.runtime.retention.run({ dryRun: false })).toMatchObject({ hold_keys_destroyed: 0, held_records_erased: 0, rights_requests_purged: 0 });
    expect((await call('GET', `/v1/rights/requests/${erased.id}`, rights)).statusCode).toBe(200);

    t.clock.set(new Date('2035-01-02T10:00:00Z'));
    const dry = await t.runtime.retention.run({ dryRun: true });
    expect(dry).toEqual({ dry_run: true, hold_keys_destroyed: 1, held_records_erased: 2, rights_requests_purged: 1, identity_rows_purged: null });
    expect(await heldOf(id)).toHaveLength(2);
    expect(await holdKeys(id)).toBe(1);

    const real = await t.runtime.retention.run({ dryRun: false });
    expect(real).toMatchObject({ dry_run: false, hold_keys_destroyed: 1, held_records_erased: 2, rights_requests_purged: 1 });
    expect(await heldOf(id)).toEqual([]);
    expect(await holdKeys(id)).toBe(0);
    expect(codeOf(await call('GET', `/v1/rights/requests/${erased.id}`, rights))).toBe('RIGHTS_REQUEST_NOT_FOUND');
    const entries = await t.runtime.store.db.selectFrom('audit_log').select(['action', 'fields']).where('action', 'like', 'retention.%').execute();
    expect(entries.map((e) => e.action).sort()).toEqual(['retention.held_records.erased', 'retention.rights_requests.purged']);
    expect(JSON.stringify(entries)).toContain(erased.id);
    expect(await t.runtime.retention.run({ dryRun: false })).toMatchObject({ hold_keys_destroyed: 0, held_records_erased: 0, rights_requests_purged: 0 });
    t.clock.set(new Date('2026-03-02T10:00:00.000Z'));
  });

  it("an answered access request's export link is purged with the request record, 24 months on", async () => {
    const { id } = await seed(t, shop);
    const filed = (await call('POST', '/v1/rights/requests', rights, { kind: 'access', customer_id: id })).json<{ id: string }>();
    const links = () => t.runtime.store.db.selectFrom('rights_exports').select('id').where('request_id', '=', filed.id).execute();
    expect(await links()).toHaveLength(1);
    t.clock.set(new Date('2028-03-03T10:00:00Z'));
    try {
      await t.runtime.retention.run({ dryRun: false });
      expect(codeOf(await call('GET', `/v1/rights/requests/${filed.id}`, rights))).toBe('RIGHTS_REQUEST_NOT_FOUND');
      expect(await links()).toEqual([]);
    } finally {
      t.clock.set(new Date('2026-03-02T10:00:00.000Z'));
    }
  });

  it('two sweepers at once: only the one holding the lease runs', async () => {
    const sweeper = (identitySweep: () => Promise<number>) =>
      createRetentionService({
        db: t.runtime.store.db,
        clock: t.runtime.clock,
        audit: t.runtime.audit,
        vault: t.runtime.vaultErasure,
        rights: t.runtime.rights,
        identitySweep,
      });
    // The first holds the lease while its run waits inside; the second must not run meanwhile.
    let started!: () => void;
    let finish!: () => void;
    const inside = new Promise<void>((resolve) => (started = resolve));
    const release = new Promise<void>((resolve) => (finish = resolve));
    const first = sweeper(async () => {
      started();
      await release;
      return 0;
    });
    const other = sweeper(async () => 0);
    const firstRun = first.runLeased();
    await inside;
    expect(await other.runLeased()).toBeUndefined();
    finish();
    expect(await firstRun).toBeDefined();
    // Released after the run: the other takes it next time.
    expect(await other.runLeased()).toBeDefined();
  });

  it('custos retention run --dry-run reports and changes nothing; unknown flags are a usage error', async () => {
    const stdout: string[] = [];
    const io: Io = { out: (l) => void stdout.push(l), err: () => undefined, progress: () => undefined, done: () => undefined };
    const before = await t.runtime.store.db.selectFrom('held_records').select('record_id').execute();
    expect(await main(['retention', 'run', '--dry-run', '--json'], io, t.env)).toBe(0);
    expect(JSON.parse(stdout.at(-1)!)).toMatchObject({ dry_run: true, identity_rows_purged: null });
    expect(await t.runtime.store.db.selectFrom('held_records').select('record_id').execute()).toEqual(before);
    expect(await main(['retention', 'run', '--force'], io, t.env)).toBe(2);
  });
});
