/**
 * `custos audit head | verify [--anchor] | export | verify --public-key --log | prove` in process,
 * on the suite's database. The offline check is run with an environment that has no database and
 * no root key: it must not open the runtime.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { main } from '../../cli/main.ts';
import type { Io } from '../../cli/io.ts';
import { loadConfig } from '../../config/config.ts';
import { openRuntime, type Runtime } from '../../runtime.ts';
import { childEnv, newDatabase, rootKey } from '../../../test/resilience/harness.ts';
import type { TestDatabase } from '../../../test/support/store.ts';
import { sampleEntry } from './testing.ts';
import { auditJwks, type SignedTreeHead } from './tree-head.ts';
import { verifyInclusion } from './merkle.ts';

let db: TestDatabase;
let env: Record<string, string>;
let runtime: Runtime;
const dir = mkdtempSync(join(tmpdir(), 'custos-audit-cli-'));

async function cli(...args: string[]) {
  const out: string[] = [];
  const err: string[] = [];
  const io: Io = { out: (l) => void out.push(l), err: (l) => void err.push(l), progress: () => undefined, done: () => undefined };
  const code = await main(['audit', ...args], io, env);
  return { code, out, err };
}

beforeAll(async () => {
  db = await newDatabase();
  env = childEnv(db, { CUSTOS_ROOT_KEY: rootKey(), CUSTOS_LOG_LEVEL: 'error' });
  runtime = await openRuntime(loadConfig(env), { background: false });
  // The tree starts on the empty log, so each entry below is a leaf of its own.
  await runtime.audit.chainPending();
  for (let i = 0; i < 9; i++) await runtime.audit.append(sampleEntry(i));
  // This process holds the builder's lease, as a running server would; the commands read what it built.
  await runtime.audit.chainPending();
});
afterAll(async () => {
  await runtime.close();
  await db.cleanup();
});

describe('custos audit (tree)', () => {
  it('head, verify with the head as anchor, export, offline verify and prove agree', async () => {
    const head = await cli('head');
    expect(head.code).toBe(0);
    const anchor = JSON.parse(head.out[0] ?? '') as SignedTreeHead;
    expect(anchor.tree_size).toBe(10);
    const anchorFile = join(dir, 'anchor.json');
    writeFileSync(anchorFile, head.out[0] ?? '');

    const verified = await cli('verify', '--anchor', anchorFile);
    expect(verified.code).toBe(0);
    expect(verified.out.join('\n')).toContain('extends the anchor of size 10');
    expect(JSON.parse(verified.out.at(-1) ?? '')).toEqual(anchor);

    const logFile = join(dir, 'log.jsonl');
    expect((await cli('export', '--out', logFile)).code).toBe(0);
    const keysFile = join(dir, 'keys.json');
    writeFileSync(keysFile, JSON.stringify(auditJwks([runtime.rootKeys.auditSigning])));
    const saved = env;
    env = { PATH: process.env.PATH ?? '' };
    try {
      const offline = await cli('verify', '--public-key', keysFile, '--log', logFile);
      expect(offline.err).toEqual([]);
      expect(offline.code).toBe(0);
      expect(offline.out[0]).toBe('audit log file intact: 10 leaves, 2 signed tree heads');
    } finally {
      env = saved;
    }

    const entry = await runtime.store.db.selectFrom('audit_tree_leaves').selectAll().where('leaf_index', '=', 4).executeTakeFirstOrThrow();
    const proved = await cli('prove', String(entry.entry_id));
    expect(proved.code).toBe(0);
    const p = JSON.parse(proved.out[0] ?? '') as { proof: { leaf_index: number; tree_size: number; inclusion_path: string[] }; head: SignedTreeHead };
    expect(
      verifyInclusion(p.proof.leaf_index, p.proof.tree_size, Buffer.from(entry.leaf_hash, 'hex'), p.proof.inclusion_path.map((h) => Buffer.from(h, 'hex')), Buffer.from(p.head.root_hash, 'hex')),
    ).toBe(true);
  });

  it('an exported log with one entry edited fails the offline check', async () => {
    const logFile = join(dir, 'log2.jsonl');
    expect((await cli('export', '--out', logFile)).code).toBe(0);
    const { readFileSync } = await import('node:fs');
    const edited = readFileSync(logFile, 'utf8').replace('"purpose":"order_fulfilment"', '"purpose":"marketing"');
    writeFileSync(logFile, edited);
    const keysFile = join(dir, 'keys.json');
    const bad = await cli('verify', '--public-key', keysFile, '--log', logFile);
    expect(bad.code).toBe(1);
    expect(bad.out[0]).toMatch(/BROKEN at line \d+: the leaves do not hash to the signed head/);
  });

  it('cut tail: verify against an anchor from before fails once leaves, entries and heads were removed', async () => {
    const anchor = await cli('head');
    const anchorFile = join(dir, 'anchor2.json');
    writeFileSync(anchorFile, anchor.out[0] ?? '');
    const d = runtime.store.db;
    const gone = await d.selectFrom('audit_tree_leaves').select('entry_id').where('leaf_index', '>=', 7).execute();
    await d.deleteFrom('audit_tree_leaves').where('leaf_index', '>=', 7).execute();
    await d.deleteFrom('audit_tree_heads').where('tree_size', '>', 7).execute();
    await d.deleteFrom('audit_log').where('id', 'in', gone.map((g) => Number(g.entry_id))).execute();
    const res = await cli('verify', '--anchor', anchorFile);
    expect(res.code).toBe(1);
    expect(res.out.join('\n')).toMatch(/shorter than the anchor|BROKEN/);
  });
});
