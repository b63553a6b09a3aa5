import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../src/cli/main.ts';
import type { Io } from '../../src/cli/io.ts';
import { createRetentionService } from '../../src/modules/retention/service.ts';
import { codeOf, staffMember, type AuthTest } from '../identity/helpers.ts';
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
    await t.runtime.erasure.idle();
    expect(await heldOf(id)).toHaveLength(2);

    // 23 months later: nothing is due (the hold runs to 2034-12-31, request records 24 months).
    t.clock.set(new Date('2028-02-01T10:00:00Z'));
    expect(await t.runtime.retention.run({ dryRun: false })).toMatchObject({ hold_keys_destroyed: 0, held_records_erased: 0, rights_requests_purged: 0 });
    expect((await call('GET', `/v1/rights/requests/${erased.id}`, rights)).statusCode).toBe(200);

    t.clock.set(new Date('2035-01-02T10:00:00Z'));
    const dry = await t.runtime.retention.run({ dryRun: true });
    expect(dry).toEqual({
      dry_run: true,
      hold_keys_destroyed: 1,
      held_records_erased: 2,
      rights_requests_purged: 1,
      identity_rows_purged: null,
      // The erasure's destruction was reached in backups by the KEK rotation of the 2028 run.
      backups: { pending_since: null, due: false, rotated_to: null, retired: [] },
    });
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

  it("a destroyed data key stops opening in backups once the sweep has rotated and retired its KEK on schedule; the receipt names the date", async () => {
    // After the test above (its hold key destroyed in 2035): a sweep once that is due settles it.
    t.clock.set(new Date('2036-01-01T10:00:00.000Z'));
    expect((await t.runtime.retention.run({ dryRun: false })).backups.pending_since).not.toBeNull();
    expect((await t.runtime.retention.run({ dryRun: true })).backups.pending_since).toBeNull();
    const { id } = await seed(t, shop);
    const db = t.runtime.store.db;
    // The attacker's backup, taken before the erasure: the customer's wrapped data key.
    const backup = await db.selectFrom('subject_keys').selectAll().where('subject_id', '=', id).executeTakeFirstOrThrow();
    const erased = (await call('DELETE', `/v1/customers/${id}`, rights)).json<{ id: string; receipt?: string | null }>();
    await t.runtime.erasure.idle();
    const request = (await call('GET', `/v1/rights/requests/${erased.id}`, rights)).json<{ receipt: string | null }>();
    const claims = JSON.parse(Buffer.from(request.receipt!.split('.')[1]!, 'base64url').toString('utf8')) as { erased_at: string; backups_unreadable_from: string };
    expect(Date.parse(claims.backups_unreadable_from) - Date.parse(claims.erased_at)).toBe(30 * 86_400_000);

    // 29 days on: not due; the KEK that wrapped the backed-up key is still there.
    t.clock.set(new Date(Date.parse(claims.erased_at) + 29 * 86_400_000));
    const early = await t.runtime.retention.run({ dryRun: false });
    expect(early.backups).toMatchObject({ due: false, rotated_to: null, retired: [] });
    expect(await db.selectFrom('keks').select('version').where('version', '=', backup.kek_version).executeTakeFirst()).toBeDefined();

    // A dry run on the day says it is due and changes nothing.
    t.clock.set(new Date(Date.parse(claims.backups_unreadable_from) + 3_600_000));
    expect((await t.runtime.retention.run({ dryRun: true })).backups).toMatchObject({ due: true, rotated_to: null });
    expect(await db.selectFrom('keks').select('version').where('version', '=', backup.kek_version).executeTakeFirst()).toBeDefined();
    const real = await t.runtime.retention.run({ dryRun: false });
    expect(real.backups.due).toBe(true);
    expect(real.backups.rotated_to).toBeGreaterThan(backup.kek_version);
    expect(real.backups.retired).toContain(backup.kek_version);
    // The backed-up key row put back names a KEK that no longer exists: nothing opens it.
    await db.insertInto('subject_keys').values(backup).execute();
    await expect(t.runtime.keys.dekFor(db, id, false)).rejects.toThrow(/KEK version \d+ is missing/);
    await db.deleteFrom('subject_keys').where('subject_id', '=', id).execute();
    t.clock.set(new Date('2026-03-02T10:00:00.000Z'));
    // Nothing pending afterwards; the rotation and retirement are audited.
    expect((await t.runtime.retention.run({ dryRun: true })).backups).toMatchObject({ pending_since: null, due: false });
    const audited = await db.selectFrom('audit_log').select(['action', 'record_id']).where('actor', '=', 'system:retention').where('action', 'in', ['keys.rotate', 'keys.retire']).execute();
    expect(audited).toContainEqual({ action: 'keys.rotate', record_id: `kek:v${real.backups.rotated_to}` });
    expect(audited).toContainEqual({ action: 'keys.retire', record_id: `kek:v${backup.kek_version}` });
  });

  it('the scheduled sweep mails staff holding rights.manage once a day: counts and dates, never a customer', async () => {
    t.clock.set(new Date('2026-03-02T10:00:00.000Z'));
    const officer = await staffMember(t, 'privacy_officer', { trainedOn: '2026-03-01' });
    const agent = await staffMember(t, 'support_agent', { trainedOn: '2026-03-01' });
    const { id } = await seed(t, shop);
    // A correction stays open until staff answer it (access requests are answered at once).
    expect((await call('POST', '/v1/rights/requests', rights, { kind: 'rectification', customer_id: id })).statusCode).toBe(201);
    const digests = async (to: string) => (await t.outbox()).filter((m) => m.to === to && /data-subject request/.test(m.subject));
    expect(await t.runtime.retention.runLeased()).toBeDefined();
    const [mail, ...more] = await digests(officer.email);
    expect(more).toEqual([]);
    expect(mail!.body).toMatch(/Open data-subject requests: [1-9]\d*\./);
    expect(mail!.body).toMatch(/Earliest due date: \d{4}-\d{2}-\d{2}\./);
    expect(mail!.body).not.toContain(id);
    expect(await digests(agent.email)).toEqual([]);
    // Again the same day, and by the CLI's run: no second mail. The next day: one more.
    await t.runtime.retention.runLeased();
    await t.runtime.retention.run({ dryRun: false });
    expect(await digests(officer.email)).toHaveLength(1);
    t.clock.set(new Date('2026-03-03T10:00:00.000Z'));
    await t.runtime.retention.runLeased();
    expect(await digests(officer.email)).toHaveLength(2);
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
        backupShred: async () => ({ pending_since: null, due: false, rotated_to: null, retired: [] }),
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
