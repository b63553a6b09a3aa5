import { randomBytes } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { loadConfig } from '../src/config/config.ts';
import { insertPending } from '../src/modules/audit/repository.ts';
import { sampleEntry } from '../src/modules/audit/testing.ts';
import { verifyAuditTree } from '../src/modules/audit/verify-tree.ts';
import { openRuntime } from '../src/runtime.ts';
import { prepareDatabase } from './databases.ts';
import type { DbKind } from './options.ts';

/**
 * Verification speed of the audit log's Merkle tree (issue target: 1,000,000 entries at
 * ≥ 250,000 entries/s on SQLite, both cores, worker threads; PostgreSQL's figure beside it).
 * Seeds the entries through the service's own row builder (each with its MAC) and tree builder,
 * then times `verifyAuditTree` with one worker thread per core: every entry's MAC, every leaf hash
 * recomputed and compared, every node hash up to the root at each signed head, the heads'
 * signatures. A figure, never an assertion; `npm run bench -- --ops audit-verify`.
 */
export const AUDIT_VERIFY_TARGET = 250_000;
const SEED_BATCH = 5000;
const log = (line: string) => process.stderr.write(`bench: ${line}\n`);

export interface AuditVerifyResult {
  readonly dbLabel: string;
  readonly entries: number;
  readonly threads: number;
  readonly seconds: number;
  readonly perSecond: number;
}

export async function benchAuditVerify(kind: DbKind, options: { entries: number; pgUrl: string }): Promise<AuditVerifyResult> {
  const db = await prepareDatabase(kind, options.pgUrl);
  const config = loadConfig({ ...db.protectedEnv, CUSTOS_ROOT_KEY: randomBytes(32).toString('base64'), CUSTOS_LOG_LEVEL: 'silent' });
  const runtime = await openRuntime(config, { background: false });
  try {
    log(`audit verify: ${db.label}, seeding ${options.entries.toLocaleString('en')} entries with their MACs and tree`);
    const t0 = performance.now();
    for (let from = 0; from < options.entries; from += SEED_BATCH) {
      const rows = Array.from({ length: Math.min(SEED_BATCH, options.entries - from) }, (_, i) => runtime.audit.pendingRow(sampleEntry(from + i, { requestId: `bench-${from + i}` })));
      await insertPending(runtime.store.db, runtime.store.dialect, rows);
      if ((from + SEED_BATCH) % 100_000 === 0) await runtime.audit.chainPending();
    }
    await runtime.audit.chainPending();
    log(`  seeded in ${((performance.now() - t0) / 1000).toFixed(0)} s`);
    const threads = availableParallelism();
    const s = performance.now();
    const result = await verifyAuditTree({ db: runtime.store.db, keys: runtime.rootKeys, parallel: { database: config.database, threads } });
    const seconds = (performance.now() - s) / 1000;
    if (!result.ok) throw new Error(`the seeded tree does not verify: ${result.reason}`);
    const r: AuditVerifyResult = { dbLabel: db.label, entries: result.treeSize, threads, seconds, perSecond: result.treeSize / seconds };
    log(`  verified ${r.entries.toLocaleString('en')} leaves in ${seconds.toFixed(2)} s on ${threads} threads: ${Math.round(r.perSecond).toLocaleString('en')} entries/s, ${(r.perSecond / AUDIT_VERIFY_TARGET).toFixed(2)}× the target`);
    return r;
  } finally {
    await runtime.close();
    await db.cleanup();
  }
}

export function auditVerifyMarkdown(results: readonly AuditVerifyResult[]): string {
  const lines = ['| database | entries | threads | seconds | entries/s | target | ratio |', '|---|--:|--:|--:|--:|--:|--:|'];
  for (const r of results) {
    lines.push(`| ${r.dbLabel} | ${r.entries.toLocaleString('en')} | ${r.threads} | ${r.seconds.toFixed(2)} | ${Math.round(r.perSecond).toLocaleString('en')} | ≥ ${AUDIT_VERIFY_TARGET.toLocaleString('en')} | ${(r.perSecond / AUDIT_VERIFY_TARGET).toFixed(2)}× |`);
  }
  return lines.join('\n');
}
