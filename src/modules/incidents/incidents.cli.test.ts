/**
 * `custos incident open | list | export` in process, on the suite's database: the export folder
 * holds the register entry, the timeline, the blast radius and its affected list, both drafts in
 * both formats, a manifest and SHA-256 sums that match; it is private (0700/0600), never written
 * into an existing folder, and its making is audited.
 */
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { childEnv, newDatabase, rootKey } from '../../../test/resilience/harness.ts';
import { TEST_DIALECT, type TestDatabase } from '../../../test/support/store.ts';
import type { Io } from '../../cli/io.ts';
import { main } from '../../cli/main.ts';
import { loadConfig } from '../../config/config.ts';
import { openRuntime, type Runtime } from '../../runtime.ts';
import { EXPORT_FORMAT } from './export.ts';

let db: TestDatabase;
let env: Record<string, string>;
let runtime: Runtime;
let keyId: string;
let customerId: string;
const dir = mkdtempSync(join(tmpdir(), 'custos-incident-cli-'));

async function cli(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (l) => void out.push(l), err: (l) => void err.push(l), progress: () => undefined, done: () => undefined };
  const code = await main(['incident', ...args], io, env);
  return { code, out, err };
}

beforeAll(async () => {
  db = await newDatabase();
  env = childEnv(db, { CUSTOS_ROOT_KEY: rootKey(), CUSTOS_LOG_LEVEL: 'error', CUSTOS_DPO_CONTACT: 'dpo@acme.example' });
  runtime = await openRuntime(loadConfig(env), { background: false });
  const { info } = await runtime.apiKeys.create({ name: 'storefront', purposes: ['account'] });
  keyId = info.id;
  const actor = { ref: `apikey:${info.id}`, kind: 'apikey' as const, purposes: ['account'] };
  ({ id: customerId } = await runtime.vault.create({ actor, purpose: 'account', requestId: 'r1' }, 'customers', undefined, { email: 'grace@example.org', name: 'Grace Hopper' }));
  await runtime.vault.readCustomer({ actor, purpose: 'account', requestId: 'r2' }, customerId);
});
afterAll(async () => {
  await runtime.close();
  await db.cleanup();
});

describe(`custos incident (${TEST_DIALECT})`, () => {
  it('opens, lists and exports an incident; the export is complete, private, checksummed and audited', async () => {
    const from = new Date(Date.now() - 3_600_000).toISOString();
    const opened = await cli('open', '--title', 'Storefront key leaked', '--severity', 'high', '--actor', `apikey:${keyId}`, '--from', from, '--json');
    expect(opened.code, opened.err.join('\n')).toBe(0);
    const incident = JSON.parse(opened.out.join('\n')) as { id: string; clock: { state: string }; scope: { actor: { id: string } } };
    expect(incident).toMatchObject({ clock: { state: 'running' }, scope: { actor: { id: keyId } } });

    const listed = await cli('list');
    expect(listed.code).toBe(0);
    expect(listed.out).toHaveLength(1);
    expect(listed.out[0]).toMatch(new RegExp(`^${incident.id}\topen\thigh\trunning\tdeadline .*\tapikey:${keyId}\tStorefront key leaked$`));

    const out = join(dir, 'export');
    const exported = await cli('export', incident.id, '--out', out);
    expect(exported.code, exported.err.join('\n')).toBe(0);
    const names = readdirSync(out).sort();
    expect(names).toEqual([
      'SHA256SUMS',
      'affected-customers.csv',
      'authority-notification.html',
      'authority-notification.md',
      'blast-radius.json',
      'customer-notice.html',
      'customer-notice.md',
      'incident.json',
      'manifest.json',
      'timeline.json',
    ]);
    expect(statSync(out).mode & 0o777).toBe(0o700);
    for (const n of names) expect(statSync(join(out, n)).mode & 0o777).toBe(0o600);

    const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8')) as { format: string; incident: string; exported_by: string; files: { name: string; sha256: string; bytes: number }[] };
    expect(manifest).toMatchObject({ format: EXPORT_FORMAT, incident: incident.id, exported_by: 'cli' });
    expect(manifest.files.map((f) => f.name).sort()).toEqual(names.filter((n) => n !== 'manifest.json' && n !== 'SHA256SUMS'));
    for (const f of manifest.files) {
      const bytes = readFileSync(join(out, f.name));
      expect(createHash('sha256').update(bytes).digest('hex')).toBe(f.sha256);
      expect(bytes.length).toBe(f.bytes);
    }
    expect(readFileSync(join(out, 'SHA256SUMS'), 'utf8')).toBe(manifest.files.map((f) => `${f.sha256}  ${f.name}\n`).join(''));

    const csv = readFileSync(join(out, 'affected-customers.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).toBe('customer_id,entries,records,first_at,last_at,fields,exposed_fields,art34_3_a');
    expect(csv.slice(1).map((l) => l.split(',')[0])).toEqual([customerId]);
    expect(csv[1]).toContain('customers.email customers.name');
    const radius = JSON.parse(readFileSync(join(out, 'blast-radius.json'), 'utf8')) as Record<string, unknown>;
    expect(radius).not.toHaveProperty('customers');
    expect(radius).toMatchObject({ totals: { customers: 1 } });
    expect(JSON.parse(readFileSync(join(out, 'incident.json'), 'utf8'))).toMatchObject({ id: incident.id, title: 'Storefront key leaked' });
    const timeline = JSON.parse(readFileSync(join(out, 'timeline.json'), 'utf8')) as { kind: string }[];
    expect(timeline.map((e) => e.kind)).toEqual(['opened', 'export']);
    expect(readFileSync(join(out, 'authority-notification.md'), 'utf8')).toContain('dpo@acme.example');
    expect(readFileSync(join(out, 'customer-notice.html'), 'utf8')).toContain('<h2>What happened</h2>');
    // The export holds ids and field names, never the values.
    for (const n of names) expect(readFileSync(join(out, n), 'utf8')).not.toMatch(/Grace Hopper|grace@example\.org/);

    const again = await cli('export', incident.id, '--out', out);
    expect(again.code).toBe(1);
    expect(again.err.join('\n')).toContain('INCIDENTS_EXPORT_TARGET_EXISTS');
    const audited = await runtime.store.db.selectFrom('audit_log').select(['actor', 'fields']).where('action', '=', 'incidents.exported').execute();
    expect(audited).toEqual([{ actor: 'cli', fields: '["incident","timeline","drafts","customers"]' }]);
  });

  it('answers usage errors with exit 2', async () => {
    expect((await cli('open', '--title', 'x', '--severity', 'low', '--actor', 'robot:1', '--from', new Date().toISOString())).code).toBe(2);
    expect((await cli('open', '--title', 'x', '--severity', 'low', '--from', new Date().toISOString())).code).toBe(2);
    expect((await cli('list', '--status', 'gone')).code).toBe(2);
    expect((await cli('export', 'inc_x')).code).toBe(2);
    expect((await cli('frobnicate')).code).toBe(2);
    const help: string[] = [];
    expect(await main(['help'], { out: (l) => void help.push(l), err: () => undefined, progress: () => undefined, done: () => undefined }, {})).toBe(0);
    expect(help.join('\n')).toContain('incident export ID --out DIR');
  });
});
