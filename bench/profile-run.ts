import { mkdirSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { measure } from './load.ts';
import type { BenchOptions, DbKind } from './options.ts';
import { formatSummary, summarise } from './profile.ts';
import { startProtected, type ProtectedSetup } from './servers.ts';
import type { Seeded } from './workload.ts';

/**
 * `--profile`: for each operation, restarts the protected server on the already seeded database
 * under `node --cpu-prof`, runs the same load, stops it (the profile is written at exit) and
 * summarises the samples taken during the measured window only (start-up and warm-up left out).
 */
export async function profileProtected(setup: ProtectedSetup, seeded: Seeded, opts: BenchOptions, kind: DbKind): Promise<string> {
  const dir = join(tmpdir(), `custos-bench-profiles-${Date.now().toString(36)}`, kind);
  mkdirSync(dir, { recursive: true });
  const out: string[] = [];
  for (const op of opts.ops) {
    if (op === 'signin' || op === 'cards' || op === 'blast' || op === 'detection' || op === 'rights' || op === 'consent' || op === 'audit-verify') continue;
    const opDir = join(dir, op);
    mkdirSync(opDir);
    const target = await startProtected(setup, ['--cpu-prof', `--cpu-prof-dir=${opDir}`, '--cpu-prof-interval=500']);
    let m;
    try {
      m = await measure(target, op, seeded, { ...opts, postgres: kind === 'postgres' });
    } finally {
      await target.child.stop();
    }
    // One profile per thread: CPU.<date>.<time>.<pid>.<thread id>.<seq>.cpuprofile; thread 0 is the main one.
    const files = readdirSync(opDir)
      .filter((f) => f.endsWith('.cpuprofile'))
      .sort((a, b) => Number(a.split('.')[4]) - Number(b.split('.')[4]));
    if (files.length === 0) throw new Error(`no CPU profile written for ${op}`);
    for (const file of files) {
      const thread = file.split('.')[4] === '0' ? 'main thread' : `worker thread ${file.split('.')[4] ?? '?'}`;
      const title = `${kind} ${op}, protected, ${thread} (profiled run: ${Math.round(m.rps)} req/s, p99 ${m.p99} ms)`;
      const text = formatSummary(title, summarise(join(opDir, file), m.window), m.total);
      out.push(text);
      process.stderr.write(`${text}\n\n`);
    }
  }
  writeFileSync(join(dir, 'summary.txt'), `${out.join('\n\n')}\n`);
  process.stderr.write(`bench: profiles and summary in ${dir}\n`);
  return dir;
}
