import { mkdirSync, mkdtempSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { createLogger } from '../../../kernel/logger.ts';
import { createOcsfFileSink } from './ocsf-file-sink.ts';
import { alertToOcsf, toOcsf } from './ocsf.ts';
import { ocsfClassOf, ocsfProblems } from './test-support/ocsf-schema.ts';
import { sampleAlert } from './test-support/sample-alert.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'custos-ocsf-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const lines = (file: string) =>
  readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l !== '')
    .map((l) => JSON.parse(l) as Record<string, unknown>);

const login = (n: number) => toOcsf({ at: new Date(Date.UTC(2026, 4, 1, 10, 0, n)), action: 'identity.authn_login_fail', outcome: 'failure', source: '198.51.100.4' });

describe('OCSF JSON lines in a file', () => {
  it('appends one valid record per line to a new 0600 file in a new 0700 folder', async () => {
    const file = join(dir, 'siem', 'custos-ocsf.jsonl');
    const sink = createOcsfFileSink({ file });
    sink.write(login(1));
    sink.write(alertToOcsf({ ...sampleAlert, title: 'Lecture massive — clé « reporting »' }));
    await sink.close();
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(dir, 'siem')).mode & 0o777).toBe(0o700);
    const records = lines(file);
    expect(records.map((r) => r.class_uid)).toEqual([3002, 2004]);
    for (const r of records) expect(ocsfProblems(r, ocsfClassOf(r))).toEqual([]);
    expect(records[1]?.message).toBe('Lecture massive — clé « reporting »');
  });

  it('appends to a file that exists, and opens a new one at the path after rotation', async () => {
    const file = join(dir, 'ocsf.jsonl');
    writeFileSync(file, '{"kept":true}\n', { mode: 0o640 });
    const sink = createOcsfFileSink({ file, rotationCheckMs: 0 });
    sink.write(login(1));
    expect(await sink.flush()).toBe(true);
    renameSync(file, `${file}.1`); // logrotate's default (create)
    sink.write(login(2));
    sink.write(login(3));
    await sink.close();
    expect(lines(`${file}.1`).map((r) => r.time ?? r.kept)).toEqual([true, login(1).time]);
    expect(lines(file).map((r) => r.time)).toEqual([login(2).time, login(3).time]);
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });

  it('never throws at the caller: an unwritable path fills the bounded queue, drops with a count, and recovers', async () => {
    const blocker = join(dir, 'not-a-folder');
    writeFileSync(blocker, '');
    const file = join(blocker, 'ocsf.jsonl'); // its folder is a file: every open fails
    const out: string[] = [];
    const stream = new PassThrough();
    stream.on('data', (c: Buffer) => out.push(c.toString()));
    const sink = createOcsfFileSink({ file, capacity: 3, backoffMs: { min: 5, max: 20 }, logger: createLogger('info', stream) });
    for (let n = 0; n < 5; n++) expect(sink.write(login(n))).toBeUndefined();
    expect(sink.dropped).toBe(2);
    expect(await sink.flush(50)).toBe(false);
    rmSync(blocker);
    mkdirSync(blocker, { mode: 0o700 });
    expect(await sink.flush(10_000)).toBe(true);
    await sink.close();
    expect(lines(file).map((r) => r.time)).toEqual([0, 1, 2].map((n) => login(n).time));
    const log = out.join('');
    expect(log).toContain('OCSF sink cannot write; retrying');
    expect(log).toMatch(/"dropped_total":2/);
    expect(log).not.toContain('198.51.100.4');
  });

  it('leaves out a record that cannot be serialised, without throwing at the caller', async () => {
    const file = join(dir, 'ocsf.jsonl');
    const sink = createOcsfFileSink({ file });
    const circular: Record<string, unknown> = { class_uid: 6003 };
    circular.self = circular;
    expect(() => sink.write(circular)).not.toThrow();
    expect(() => sink.write({ class_uid: 6003, size: 10n })).not.toThrow();
    sink.write(login(1));
    await sink.close();
    expect(lines(file).map((r) => r.class_uid)).toEqual([3002]);
  });

  it('drops what is left when closed while the file cannot be written, counts it, and drops what comes after', async () => {
    const blocker = join(dir, 'not-a-folder');
    writeFileSync(blocker, '');
    const sink = createOcsfFileSink({ file: join(blocker, 'ocsf.jsonl'), backoffMs: { min: 5, max: 20 }, closeTimeoutMs: 100 });
    sink.write(login(1));
    sink.write(login(2));
    await sink.close();
    expect(sink.dropped).toBe(2);
    sink.write(login(3));
    expect(sink.dropped).toBe(3);
    expect(readFileSync(blocker, 'utf8')).toBe('');
  });
});
