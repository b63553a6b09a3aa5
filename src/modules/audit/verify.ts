import type { Kysely } from 'kysely';
import type { AuditKeys } from '../../crypto/keyring.ts';
import type { Database } from '../../store/schema.ts';
import { checkpointKey, checkpointSignatureValid, chainHash, entryText, GENESIS_HASH, macMatchesAny } from './canonical.ts';
import type { StoredRow } from './repository.ts';

export type VerifyResult =
  | { ok: true; entries: number; checkpoints: number; head: { seq: number; hash: string } }
  | { ok: false; entries: number; firstBad: { seq: number | null; id: number }; reason: string };

export interface VerifyDeps {
  readonly db: Kysely<Database>;
  readonly keys: AuditKeys;
  /**
   * A head kept outside the database (e.g. from an earlier verify): the log must still contain it.
   * Without one, removing the newest entries together with their checkpoints and the head is not
   * detectable from the database alone (see docs/adr/0001-audit-log.md).
   */
  readonly anchor?: { seq: number; hash: string } | undefined;
}

const PAGE = 1000;

class Bad {
  readonly seq: number | null;
  readonly id: number;
  readonly reason: string;
  constructor(seq: number | null, id: number, reason: string) {
    this.seq = seq;
    this.id = id;
    this.reason = reason;
  }
}

/**
 * Checks the hash-chained log that versions before migration 0024 wrote (ADR 0001; the Merkle
 * tree's leaf 0 commits to its head), streaming it in pages of 1000 in seq order: every MAC, every
 * link (prev_hash), every hash, every checkpoint signature, that the last entry is covered by a
 * signed checkpoint and matches the head, and that nothing lies beyond the head. Entries written
 * since are never chained: verify-tree.ts checks them as leaves of the tree. Returns the first bad
 * entry (seq and row id; id 0 when the entry is missing altogether) and why. PCI DSS 4.0.1 10.3.4
 * (change-detection on audit logs).
 */
export async function verifyAuditLog(
  deps: VerifyDeps,
  onProgress?: (done: number, total: number) => void,
): Promise<VerifyResult> {
  let entries = 0;
  try {
    return await run(deps, onProgress, (n) => {
      entries = n;
    });
  } catch (error) {
    if (error instanceof Bad) return { ok: false, entries, firstBad: { seq: error.seq, id: error.id }, reason: error.reason };
    throw error;
  }
}

async function readHead(db: Kysely<Database>): Promise<{ seq: number; hash: string }> {
  const head = await db.selectFrom('audit_head').select(['seq', 'hash']).where('id', '=', 1).executeTakeFirst();
  if (head === undefined) throw new Bad(null, 0, 'the chain head row is missing');
  return { seq: Number(head.seq), hash: head.hash };
}

async function run(
  { db, keys, anchor }: VerifyDeps,
  onProgress: ((done: number, total: number) => void) | undefined,
  setEntries: (n: number) => void,
): Promise<VerifyResult> {
  const head = await readHead(db);
  const total = head.seq;
  const dupRows = await db
    .selectFrom('audit_log')
    .select('nonce')
    .groupBy('nonce')
    .having((eb) => eb.fn.countAll(), '>', 1)
    .limit(PAGE)
    .execute();
  const duplicated = new Set(dupRows.map((r) => r.nonce));
  const seenOnce = new Set<string>();
  const isReplay = (nonce: string): boolean => {
    if (!duplicated.has(nonce)) return false;
    if (seenOnce.has(nonce)) return true;
    seenOnce.add(nonce);
    return false;
  };

  const checkpointPages = async function* () {
    let after = Number.MIN_SAFE_INTEGER;
    for (;;) {
      const page = await db
        .selectFrom('audit_checkpoints')
        .selectAll()
        .where('seq', '>', after)
        .where('seq', '<=', head.seq)
        .orderBy('seq')
        .limit(PAGE)
        .execute();
      for (const cp of page) yield { ...cp, seq: Number(cp.seq) };
      if (page.length < PAGE) return;
      after = Number(page[page.length - 1]!.seq);
    }
  };
  const cps = checkpointPages();
  let cp = (await cps.next()).value;
  let checkpoints = 0;
  let expected = 1;
  let prev = GENESIS_HASH;
  let done = 0;
  let uncovered: { seq: number; id: number } | undefined;
  let last: { seq: number; id: number } | undefined;

  // Start below any possible seq, so that a row given seq 0 or a negative seq is seen too.
  for (let after = Number.MIN_SAFE_INTEGER; ; ) {
    const page: StoredRow[] = await db
      .selectFrom('audit_log')
      .selectAll()
      .where('seq', '>', after)
      .where('seq', '<=', head.seq)
      .orderBy('seq')
      .limit(PAGE)
      .execute();
    for (const row of page) {
      const seq = Number(row.seq);
      const at = (reason: string) => new Bad(seq, row.id, reason);
      if (seq !== expected) throw at(`entry seq ${expected} is missing before this one (removed or renumbered)`);
      if (row.rejected !== null) throw at('a chained entry is marked as rejected');
      const text = entryText(row);
      if (!macMatchesAny(keys, text, row.mac)) throw at('the MAC does not match the entry: it was altered or forged');
      if (row.prev_hash !== prev) throw at('prev_hash does not link to the previous entry (an entry was removed, inserted or moved)');
      const hash = chainHash(prev, seq, row.id, row.mac, text);
      if (hash !== row.hash) throw at('the hash does not match the entry (altered, moved or renumbered)');
      if (isReplay(row.nonce)) throw at('the entry is a replayed copy of an earlier one (same nonce)');
      if (anchor !== undefined && anchor.seq === seq && anchor.hash !== hash) throw at('the chain differs from the anchor at this entry');
      if (cp !== undefined && cp.seq < seq) throw new Bad(cp.seq, 0, `a checkpoint exists for seq ${cp.seq}, which has no entry`);
      if (cp !== undefined && cp.seq === seq) {
        if (cp.hash !== hash) throw at('the signed checkpoint at this entry does not match the chain');
        const signer = checkpointKey(keys, cp.key_id);
        if (signer === undefined) throw at('the checkpoint at this entry is signed by an unknown key');
        if (!checkpointSignatureValid(signer, cp, cp.signature)) {
          throw at('the checkpoint signature at this entry is invalid (forged checkpoint)');
        }
        checkpoints += 1;
        uncovered = undefined;
        cp = (await cps.next()).value;
      } else if (uncovered === undefined) uncovered = { seq, id: row.id };
      prev = hash;
      last = { seq, id: row.id };
      expected += 1;
      setEntries(expected - 1);
    }
    done += page.length;
    onProgress?.(done, total);
    if (page.length < PAGE) break;
    after = expected - 1;
  }

  const lastSeq = expected - 1;
  const missingTail = (reason: string) => new Bad(lastSeq + 1, 0, reason);
  if (cp !== undefined) throw missingTail(`entries after seq ${lastSeq} are missing: a signed checkpoint exists for seq ${cp.seq}`);
  if (head.seq !== lastSeq) throw missingTail(`entries after seq ${lastSeq} are missing: the chain head is at seq ${head.seq}`);
  if (head.hash !== prev) throw new Bad(lastSeq, last?.id ?? 0, 'the chain head does not match the last entry');
  if (uncovered !== undefined) throw new Bad(uncovered.seq, uncovered.id, 'no signed checkpoint covers this entry');
  if (anchor !== undefined && anchor.seq > lastSeq) {
    throw missingTail(`entries after seq ${lastSeq} are missing: the anchor is at seq ${anchor.seq}`);
  }

  // Nothing may lie beyond the head. Read the maxima first, the head after: anything committed
  // by a concurrent chainer before the maxima were read is then below the head read second.
  const maxSeq = await db.selectFrom('audit_log').select((eb) => eb.fn.max('seq').as('m')).executeTakeFirst();
  const maxCp = await db.selectFrom('audit_checkpoints').select((eb) => eb.fn.max('seq').as('m')).executeTakeFirst();
  const head2 = await readHead(db);
  if (maxSeq?.m != null && Number(maxSeq.m) > head2.seq) {
    const beyond = await db
      .selectFrom('audit_log')
      .select(['id', 'seq'])
      .where('seq', '>', head2.seq)
      .orderBy('seq')
      .limit(1)
      .executeTakeFirst();
    throw new Bad(Number(beyond?.seq ?? maxSeq.m), beyond?.id ?? 0, 'an entry lies beyond the chain head (inserted)');
  }
  if (maxCp?.m != null && Number(maxCp.m) > head2.seq) {
    throw missingTail(`entries after seq ${lastSeq} are missing: a signed checkpoint exists for seq ${Number(maxCp.m)}`);
  }

  return { ok: true, entries: lastSeq, checkpoints, head: { seq: head.seq, hash: head.hash } };
}

/**
 * The record version each record's last audited write produced (`audit verify --records`): the
 * highest `record_version` of the entries naming the record, since every write increments it.
 * Read after the chain verified, so every entry counted is one Custos wrote.
 */
export async function writtenRecordVersions(db: Kysely<Database>): Promise<Map<string, number>> {
  const rows = await db
    .selectFrom('audit_log')
    .select(['record_id', (eb) => eb.fn.max('record_version').as('version')])
    .where('record_version', 'is not', null)
    .where('record_id', 'is not', null)
    .where('rejected', 'is', null)
    .groupBy('record_id')
    .execute();
  return new Map(rows.map((r) => [r.record_id!, Number(r.version)]));
}
