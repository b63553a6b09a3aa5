/**
 * The browser verifier (Web Crypto only) against a real proof: a customer's view of their entry
 * plus its withheld hash verifies against the signed head; the same view with an edited purpose,
 * a proof for another leaf, or a head signed by another key does not.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Store } from '../../store/database.ts';
import { testStore, TEST_DIALECT } from '../../../test/support/store.ts';
import { verifyEntryProof, type EntryProof } from './browser-verify.ts';
import type { AuditLog } from './service.ts';
import { sampleEntry, testAuditKeys, testAuditLog } from './testing.ts';
import { auditJwks, withheldHash } from './tree-head.ts';
import { latestHead, leafIndexes, proveLeaf } from './tree-store.ts';

let store: Store;
let log: AuditLog;
const keys = testAuditKeys();
let shown: EntryProof;

beforeAll(async () => {
  store = await testStore();
  log = testAuditLog(store, keys);
  await log.chainPending();
  for (let i = 0; i < 13; i++) await log.append(sampleEntry(i));
  await log.chainPending();
  const row = await store.db.selectFrom('audit_log').selectAll().where('request_id', '=', 'req-5').executeTakeFirstOrThrow();
  const head = await latestHead(store.db);
  const proof = await proveLeaf(store.db, (await leafIndexes(store.db, [row.id])).get(row.id), head);
  if (proof === null || head === null) throw new Error('no proof');
  shown = {
    entry: {
      id: row.id,
      at: row.at,
      actor: row.actor,
      action: row.action,
      subject_id: row.subject_id,
      collection: row.collection,
      record_id: row.record_id,
      fields: JSON.parse(row.fields) as string[],
      purpose: row.purpose,
      outcome: row.outcome,
      withheld_hash: withheldHash(row),
    },
    proof,
    head,
    keys: auditJwks([keys.auditSigning]),
  };
});
afterAll(async () => {
  await log.stop();
  await store.close();
});

describe(`browser verifier (${TEST_DIALECT})`, () => {
  it('an entry as the customer sees it verifies against the signed head', async () => {
    expect(await verifyEntryProof(shown)).toBe(true);
  });
  it('an entry shown with another purpose than the one logged does not verify', async () => {
    expect(await verifyEntryProof({ ...shown, entry: { ...shown.entry, purpose: 'marketing' } })).toBe(false);
  });
  it('a proof moved to another leaf index does not verify', async () => {
    expect(await verifyEntryProof({ ...shown, proof: { ...shown.proof, leaf_index: shown.proof.leaf_index + 1 } })).toBe(false);
  });
  it('a head signed by a key that is not published does not verify', async () => {
    expect(await verifyEntryProof({ ...shown, keys: auditJwks([{ ...testAuditKeys().auditSigning, keyId: shown.head.key_id }]) })).toBe(false);
  });
});
