import type { Kysely, Transaction } from 'kysely';
import type { Dek, KeyStore } from '../../crypto/key-store.ts';
import type { Clock } from '../../kernel/clock.ts';
import { fail } from '../../kernel/errors.ts';
import type { Database } from '../../store/schema.ts';
import type { AuditLog } from '../audit/service.ts';
import type { StoredValue } from '../inventory/index.ts';
import type { Actor, PolicyService } from '../policy/service.ts';
import { openRecord, parseStored, sealedUnder, sealRecord, type RecordPlace } from './codec.ts';
import { VaultErasureErrors } from './erasure-errors.ts';

/**
 * What erasure needs from the vault, on the store directly: the customer's records (ids, dates,
 * never values), the re-sealing of fields held for a legal obligation under a hold key, and the
 * deletion of the records with their blind indexes in the transaction that destroys the data key.
 *
 * A hold key is the data key of the subject `hold:<customer>:<until>`: one per customer and hold
 * end, so that the retention sweep shreds each when its period ends (DESIGN.md, keys). The record
 * is opened with the envelope codec (codec.ts) and its held fields are sealed together as one
 * record envelope (ADR 0003, `r1`) under the hold key, bound to collection, record id, hold subject,
 * hold-key version and the held field names; `held_records.data` is that envelope's stored text
 * with no plain fields. Only a caller stating the `legal_obligation` purpose opens them
 * (GDPR Art. 17(3)(b)).
 */
export const HOLD_PURPOSE = 'legal_obligation';

export interface CustomerRecordRef {
  readonly id: string;
  readonly collection: string;
  readonly created_at: string;
}

export const holdSubject = (customerId: string, until: string) => `hold:${customerId}:${until}`;
/**
 * Where a held record's envelope sits: the record's collection and id, the hold subject as its
 * subject, record version 1 (a held record is written once and never updated).
 */
const heldPlace = (collection: string, recordId: string, holdSubjectId: string): RecordPlace => ({ collection, id: recordId, subjectId: holdSubjectId, version: 1 });

export interface HoldInput {
  readonly record_id: string;
  readonly collection: string;
  readonly fields: readonly string[];
  readonly until: string;
  readonly ground: string;
}

/** Records re-sealed per transaction, and rows per INSERT statement. */
export const HOLD_BATCH = 500;
const HOLD_ROWS_PER_INSERT = 250;

export interface HeldRecord {
  readonly record_id: string;
  readonly collection: string;
  readonly held_until: string;
  readonly ground: string;
  readonly values: Record<string, StoredValue>;
}

export interface VaultErasure {
  /** Customer ids after `after`, by id, up to `limit` (a shop erasure walks them all); nothing is opened. */
  customerIds(after: string, limit: number): Promise<string[]>;
  /** The customer's records, the customer first; nothing is opened. */
  records(customerId: string): Promise<CustomerRecordRef[]>;
  /**
   * Re-seals the held fields of a customer's records under the hold key of each `until`, many
   * records per transaction (HOLD_BATCH) and per statement; records already held are left as they
   * are (resumable, and safe beside a second run). Returns how many records are held now; stops
   * early when the customer's key is already destroyed (an earlier run got past this step).
   */
  holdMany(customerId: string, holds: readonly HoldInput[]): Promise<number>;
  /** In one transaction: destroys the customer's data key and deletes their records and blind indexes. */
  shred(customerId: string): Promise<{ keyVersions: number; records: number }>;
  /**
   * Holds whose end date has passed (before `today`): with `dryRun` only counted; otherwise each
   * hold key is destroyed with its held records in one transaction. Returns the records, per hold.
   */
  expireHolds(today: string, dryRun: boolean): Promise<{ holdKeys: number; recordIds: string[] }>;
  /** The held records of a customer, opened for `legal_obligation` only (audited). */
  openHeld(actor: Actor, purpose: string | undefined, customerId: string, requestId: string): Promise<HeldRecord[]>;
}

export function createVaultErasure(deps: {
  db: Kysely<Database>;
  keys: KeyStore;
  clock: Clock;
  policy: Pick<PolicyService, 'authorize'>;
  audit: Pick<AuditLog, 'append'>;
}): VaultErasure {
  const { db, keys, clock } = deps;

  async function deleteRecords(tx: Transaction<Database>, customerId: string): Promise<number> {
    const ids = tx.selectFrom('records').select('id').where('subject_id', '=', customerId);
    await tx.deleteFrom('blind_indexes').where('record_id', 'in', ids).execute();
    const gone = await tx.deleteFrom('records').where('subject_id', '=', customerId).executeTakeFirst();
    return Number(gone.numDeletedRows);
  }

  /** Whether per-field records are still read (the store is not marked re-sealed, ADR 0003). */
  async function legacyAllowed(): Promise<boolean> {
    const row = await db.selectFrom('vault_state').select('value').where('name', '=', 'resealed').executeTakeFirst();
    return Number(row?.value ?? 0) !== 1;
  }

  /**
   * One batch in one transaction: the records read in one statement, each opened under the
   * customer's key and its held fields sealed under the hold key of its end date (created once per
   * date), inserted a few hundred rows per statement. False when the customer's key is gone.
   */
  async function holdBatch(customerId: string, batch: readonly HoldInput[], legacy: boolean): Promise<{ held: number; keyGone: boolean }> {
    const rows = await db
      .selectFrom('records')
      .select(['id', 'data', 'collection', 'version'])
      .where('subject_id', '=', customerId)
      .where('id', 'in', batch.map((h) => h.record_id))
      .execute();
    const byId = new Map(rows.map((r) => [r.id, r]));
    return db.transaction().execute(async (tx) => {
      const deks = new Map<number, Dek | undefined>();
      const holdKeys = new Map<string, Dek>();
      const at = clock.now().toISOString();
      const values: Database['held_records'][] = [];
      for (const h of batch) {
        const row = byId.get(h.record_id);
        if (row === undefined) continue;
        const stored = parseStored(row.data);
        const version = sealedUnder(stored);
        let dek: Dek | undefined;
        if (version !== undefined) {
          if (!deks.has(version)) deks.set(version, await keys.dekVersion(tx, customerId, version));
          dek = deks.get(version);
          if (dek === undefined) return { held: 0, keyGone: true };
        }
        const opened = openRecord(dek, { collection: row.collection, id: row.id, subjectId: customerId, version: row.version }, stored, legacy);
        const held: Record<string, StoredValue> = {};
        for (const field of h.fields) {
          const value = Object.hasOwn(opened.p, field) ? opened.p[field] : opened.e[field];
          if (value !== undefined) held[field] = value;
        }
        const subject = holdSubject(customerId, h.until);
        let holdKey = holdKeys.get(subject);
        if (holdKey === undefined) {
          holdKey = await keys.dekFor(tx, subject, true);
          if (holdKey === undefined) throw new Error('no hold key');
          holdKeys.set(subject, holdKey);
        }
        values.push({
          record_id: row.id,
          subject_id: customerId,
          collection: row.collection,
          hold_subject: subject,
          data: sealRecord(holdKey, heldPlace(row.collection, row.id, subject), { e: held, p: {} }),
          held_until: h.until,
          ground: h.ground,
          created_at: at,
        });
      }
      for (let i = 0; i < values.length; i += HOLD_ROWS_PER_INSERT)
        await tx.insertInto('held_records').values(values.slice(i, i + HOLD_ROWS_PER_INSERT)).onConflict((oc) => oc.column('record_id').doNothing()).execute();
      return { held: values.length, keyGone: false };
    });
  }

  return {
    async customerIds(after, limit) {
      const rows = await db.selectFrom('records').select('id').where('collection', '=', 'customers').where('id', '>', after).orderBy('id').limit(limit).execute();
      return rows.map((r) => r.id);
    },

    async records(customerId) {
      const rows = await db.selectFrom('records').select(['id', 'collection', 'created_at']).where('subject_id', '=', customerId).orderBy('id').execute();
      return rows.sort((a, b) => (a.collection === 'customers' ? -1 : b.collection === 'customers' ? 1 : 0));
    },

    async holdMany(customerId, holds) {
      const already = await db.selectFrom('held_records').select('record_id').where('subject_id', '=', customerId).execute();
      const done = new Set(already.map((r) => r.record_id));
      const todo = holds.filter((h) => !done.has(h.record_id));
      const legacy = await legacyAllowed();
      let held = done.size;
      for (let i = 0; i < todo.length; i += HOLD_BATCH) {
        const batch = todo.slice(i, i + HOLD_BATCH);
        let step: { held: number; keyGone: boolean };
        try {
          step = await holdBatch(customerId, batch, legacy);
        } catch (error) {
          // Two runs at once may both create a hold key; the loser finds it the second time.
          const again = await holdBatch(customerId, batch, legacy).catch(() => undefined);
          if (again === undefined) throw error;
          step = again;
        }
        if (step.keyGone) return held;
        held += step.held;
        // Between batches the server's own requests go first.
        await new Promise((resolve) => setImmediate(resolve));
      }
      return held;
    },

    async shred(customerId) {
      return db.transaction().execute(async (tx) => {
        const keyVersions = await keys.destroy(customerId, tx);
        const records = await deleteRecords(tx, customerId);
        return { keyVersions, records };
      });
    },

    async expireHolds(today, dryRun) {
      const rows = await db.selectFrom('held_records').select(['record_id', 'hold_subject']).where('held_until', '<', today).orderBy('record_id').execute();
      const subjects = [...new Set(rows.map((r) => r.hold_subject))];
      if (!dryRun)
        for (const subject of subjects)
          await db.transaction().execute(async (tx) => {
            await keys.destroy(subject, tx);
            await tx.deleteFrom('held_records').where('hold_subject', '=', subject).execute();
          });
      return { holdKeys: subjects.length, recordIds: rows.map((r) => r.record_id) };
    },

    async openHeld(actor, purpose, customerId, requestId) {
      const entry = { actor: actor.ref, action: 'vault.held.read', subjectId: customerId, collection: 'held_records', requestId };
      try {
        if (purpose !== HOLD_PURPOSE) fail(VaultErasureErrors.VAULT_HOLD_PURPOSE_REQUIRED, `records held after an erasure are released only for ${HOLD_PURPOSE}`);
        await deps.policy.authorize(actor, purpose, customerId);
      } catch (error) {
        await deps.audit.append({ ...entry, purpose: purpose ?? null, outcome: 'denied' });
        throw error;
      }
      await deps.audit.append({ ...entry, purpose: HOLD_PURPOSE, outcome: 'success' });
      const rows = await db.selectFrom('held_records').selectAll().where('subject_id', '=', customerId).orderBy('record_id').execute();
      const out: HeldRecord[] = [];
      for (const row of rows) {
        const stored = parseStored(row.data);
        const version = sealedUnder(stored);
        const key = version === undefined ? undefined : await keys.dekVersion(db, row.hold_subject, version);
        // A hold key already destroyed (the hold ended) leaves nothing to open.
        const values = key === undefined ? {} : openRecord(key, heldPlace(row.collection, row.record_id, row.hold_subject), stored, false).e;
        out.push({ record_id: row.record_id, collection: row.collection, held_until: row.held_until, ground: row.ground, values });
      }
      return out;
    },
  };
}
