import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../store/database.ts';
import { testStore } from '../../../test/support/store.ts';
import { GENESIS_HASH } from './canonical.ts';
import { verifyAuditLog, type AuditEntry, type AuditLog } from './service.ts';
import { testAuditKeys, testAuditLog } from './testing.ts';
import { verifyAuditTree } from './verify-tree.ts';

/*
 * Properties: any sequence of reads and writes, admitted to the tree in any number of builder
 * passes, verifies; and any single-row change afterwards is detected (verification admits what
 * waits first, as `custos audit verify` does). "Any change" means: any column of an admitted entry
 * that the entry is made of, its row id, its seq, its refusal mark, or its removal; any such
 * column of a waiting entry except its row id, which nothing binds until it is a leaf (the
 * deletion of a waiting entry is the known gap, see ADR 0004). prev_hash and hash belong to the
 * chain of earlier versions only: no entry written since has them (audit.tamper.test.ts covers it).
 */
let store: Store;
const keys = testAuditKeys();

beforeAll(async () => {
  store = await testStore();
});
afterAll(async () => {
  await store.close();
});

async function reset(): Promise<void> {
  await store.db.deleteFrom('audit_log').execute();
  await store.db.deleteFrom('audit_checkpoints').execute();
  for (const t of ['audit_tree_leaves', 'audit_tree_nodes', 'audit_tree_heads', 'audit_tree_refused', 'audit_tree_pending'] as const) await store.db.deleteFrom(t).execute();
  await store.db.updateTable('audit_tree_lease').set({ holder: '', expires_ms: 0, legacy_seq: null }).execute();
  await store.db.updateTable('audit_head').set({ seq: 0, hash: GENESIS_HASH }).where('id', '=', 1).execute();
}

const word = fc.stringMatching(/^[A-Za-z0-9_-]{1,12}$/);
const entry: fc.Arbitrary<AuditEntry> = fc.record({
  actor: fc.oneof(fc.constant('system'), fc.constant('cli'), word.map((w) => `apikey:key_${w}`), word.map((w) => `customer:cus_${w}`)),
  action: fc.constantFrom('vault.read', 'vault.create', 'vault.update', 'vault.lookup', 'audit.read'),
  subjectId: fc.option(word.map((w) => `cus_${w}`)),
  collection: fc.option(fc.constantFrom('customers', 'addresses', 'orders')),
  recordId: fc.option(word),
  fields: fc.array(fc.stringMatching(/^[a-z_][a-z0-9_.]{0,10}$/), { maxLength: 4 }),
  purpose: fc.option(fc.constantFrom('support', 'order_fulfilment', 'fraud-prevention')),
  outcome: fc.constantFrom('success', 'denied', 'failure'),
  requestId: fc.option(word),
});
const step = fc.record({ entry, write: fc.boolean(), chainAfter: fc.boolean() });

const COLUMNS = [
  'at',
  'actor',
  'action',
  'subject_id',
  'collection',
  'record_id',
  'fields',
  'purpose',
  'outcome',
  'request_id',
  'nonce',
  'mac',
  'seq',
  'id',
  'rejected',
  'delete',
] as const;
const mutation = fc.record({ row: fc.nat(), column: fc.constantFrom(...COLUMNS), toNull: fc.boolean() });

function changed(value: string | null, toNull: boolean): string | null {
  if (value === null) return 'x';
  if (toNull) return null;
  // Flip the last character, keeping hex hex (so the change is not a mere format error).
  const last = value.at(-1) ?? '';
  return value.slice(0, -1) + (last === '0' ? '1' : '0');
}

/** What `custos audit verify` does: admit what waits, then check the chain and the tree. */
async function verifyAll(log: AuditLog): Promise<{ chain: boolean; tree: boolean; leaves: number }> {
  await log.chainPending();
  const chain = await verifyAuditLog({ db: store.db, keys });
  const tree = await verifyAuditTree({ db: store.db, keys });
  return { chain: chain.ok, tree: tree.ok, leaves: tree.ok ? tree.treeSize : -1 };
}

describe('audit log properties', () => {
  it('any sequence of entries verifies, and any single-row change is detected', { timeout: 180_000 }, async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(step, { minLength: 1, maxLength: 20 }), fc.boolean(), mutation, async (steps, chainAtEnd, m) => {
        await reset();
        const log = testAuditLog(store, keys, { batchSize: 7 });
        let reads: Promise<void>[] = [];
        for (const s of steps) {
          if (s.write) await store.db.transaction().execute((tx) => log.appendInTx(tx, s.entry));
          else reads.push(log.append(s.entry));
          if (s.chainAfter) {
            await Promise.all(reads);
            reads = [];
            await log.chainPending();
          }
        }
        await Promise.all(reads);
        if (chainAtEnd) await log.chainPending();
        const leaves = new Set((await store.db.selectFrom('audit_tree_leaves').select('entry_id').execute()).map((l) => Number(l.entry_id)));
        const intact = await verifyAll(log);
        expect(intact).toEqual({ chain: true, tree: true, leaves: steps.length + 1 });

        const rows = await store.db.selectFrom('audit_log').selectAll().orderBy('id').execute();
        const target = rows[m.row % rows.length]!;
        const pending = !leaves.has(target.id);
        if (pending && (m.column === 'id' || m.column === 'delete')) return;
        const where = store.db.updateTable('audit_log').where('id', '=', target.id);
        if (m.column === 'delete') await store.db.deleteFrom('audit_log').where('id', '=', target.id).execute();
        else if (m.column === 'id') await where.set({ id: rows.at(-1)!.id + 100 }).execute();
        else if (m.column === 'seq') await where.set({ seq: target.seq === null ? 1000 : m.toNull ? null : Number(target.seq) + 1000 }).execute();
        else if (m.column === 'rejected') await where.set({ rejected: 'mac' }).execute();
        else if (m.column === 'at' || m.column === 'actor' || m.column === 'action' || m.column === 'fields' || m.column === 'outcome' || m.column === 'nonce' || m.column === 'mac') {
          await where.set({ [m.column]: changed(target[m.column], false) }).execute();
        } else await where.set({ [m.column]: changed(target[m.column], m.toNull) }).execute();

        const tampered = await verifyAll(log);
        expect(tampered.chain && tampered.tree).toBe(false);
      }),
      { numRuns: 40 },
    );
  });
});
