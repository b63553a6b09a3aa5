import type { Kysely, Transaction } from 'kysely';
import type { KeyStore } from '../../crypto/key-store.ts';
import { open, seal } from '../../crypto/aead.ts';
import type { Clock } from '../../kernel/clock.ts';
import { fail } from '../../kernel/errors.ts';
import type { Database } from '../../store/schema.ts';
import type { AuditLog } from '../audit/service.ts';
import type { StoredValue } from '../inventory/index.ts';
import type { Actor, PolicyService } from '../policy/service.ts';
import { openField, parseStored } from './codec.ts';
import { VaultErasureErrors } from './erasure-errors.ts';

/**
 * What erasure needs from the vault, on the store directly: the customer's records (ids, dates,
 * never values), the re-sealing of fields held for a legal obligation under a hold key, and the
 * deletion of the records with their blind indexes in the transaction that destroys the data key.
 *
 * A hold key is the data key of the subject `hold:<customer>:<until>`: one per customer and hold
 * end, so that the retention sweep shreds each when its period ends (DESIGN.md, keys). Held values
 * are sealed with AES-256-GCM, their associated data naming hold, collection, field, record and
 * key version; only a caller stating the `legal_obligation` purpose opens them
 * (GDPR Art. 17(3)(b)).
 */
export const HOLD_PURPOSE = 'legal_obligation';

export interface CustomerRecordRef {
  readonly id: string;
  readonly collection: string;
  readonly created_at: string;
}

export const holdSubject = (customerId: string, until: string) => `hold:${customerId}:${until}`;
const holdAad = (collection: string, field: string, recordId: string, version: number) => `custos:hold1|${collection}|${field}|${recordId}|${version}`;

export interface HeldRecord {
  readonly record_id: string;
  readonly collection: string;
  readonly held_until: string;
  readonly ground: string;
  readonly values: Record<string, StoredValue>;
}

export interface VaultErasure {
  /** The customer's records, the customer first; nothing is opened. */
  records(customerId: string): Promise<CustomerRecordRef[]>;
  /**
   * Re-seals `fields` of one record under the hold key for `until`; a record already held is left
   * as it is (resumable). Returns false when the record is gone or its key already destroyed.
   */
  hold(input: { customerId: string; recordId: string; collection: string; fields: readonly string[]; until: string; ground: string }): Promise<boolean>;
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

  async function holdOnce(input: Parameters<VaultErasure['hold']>[0]): Promise<boolean> {
    const existing = await db.selectFrom('held_records').select('record_id').where('record_id', '=', input.recordId).executeTakeFirst();
    if (existing !== undefined) return true;
    const row = await db.selectFrom('records').select(['data', 'collection']).where('id', '=', input.recordId).where('subject_id', '=', input.customerId).executeTakeFirst();
    if (row === undefined) return false;
    const stored = parseStored(row.data);
    const subject = holdSubject(input.customerId, input.until);
    const sealed: Record<string, string> = {};
    return db.transaction().execute(async (tx) => {
      const holdKey = await keys.dekFor(tx, subject, true);
      if (holdKey === undefined) throw new Error('no hold key');
      for (const field of input.fields) {
        let value: StoredValue | undefined;
        if (Object.hasOwn(stored.p, field)) value = stored.p[field];
        else {
          const box = stored.e[field];
          if (box === undefined) continue;
          const dek = await keys.dekVersion(tx, input.customerId, Number(box.split('.')[1]));
          // The customer's key is gone: an earlier run got past this step.
          if (dek === undefined) return false;
          value = openField(dek, row.collection, field, input.recordId, box);
        }
        if (value === undefined) continue;
        sealed[field] = `h1.${holdKey.version}.${seal(holdKey.key, Buffer.from(JSON.stringify(value), 'utf8'), holdAad(row.collection, field, input.recordId, holdKey.version)).toString('base64url')}`;
      }
      await tx
        .insertInto('held_records')
        .values({
          record_id: input.recordId,
          subject_id: input.customerId,
          collection: row.collection,
          hold_subject: subject,
          data: JSON.stringify(sealed),
          held_until: input.until,
          ground: input.ground,
          created_at: clock.now().toISOString(),
        })
        .onConflict((oc) => oc.column('record_id').doNothing())
        .execute();
      return true;
    });
  }

  return {
    async records(customerId) {
      const rows = await db.selectFrom('records').select(['id', 'collection', 'created_at']).where('subject_id', '=', customerId).orderBy('id').execute();
      return rows.sort((a, b) => (a.collection === 'customers' ? -1 : b.collection === 'customers' ? 1 : 0));
    },

    async hold(input) {
      try {
        return await holdOnce(input);
      } catch (error) {
        // Two runs at once may both create the hold key; the loser finds it the second time.
        const again = await holdOnce(input).catch(() => undefined);
        if (again === undefined) throw error;
        return again;
      }
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
        const values: Record<string, StoredValue> = {};
        for (const [field, box] of Object.entries(JSON.parse(row.data) as Record<string, string>)) {
          const [, version, body] = box.split('.');
          const key = await keys.dekVersion(db, row.hold_subject, Number(version));
          const plain = key === undefined || body === undefined ? undefined : open(key.key, Buffer.from(body, 'base64url'), holdAad(row.collection, field, row.record_id, key.version));
          if (plain === undefined) continue;
          values[field] = JSON.parse(plain.toString('utf8')) as StoredValue;
        }
        out.push({ record_id: row.record_id, collection: row.collection, held_until: row.held_until, ground: row.ground, values });
      }
      return out;
    },
  };
}
