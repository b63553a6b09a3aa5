import { randomBytes, type KeyObject } from 'node:crypto';
import { z } from 'zod';
import { fail } from '../../kernel/errors.ts';
import { entryMac, entryText, type EntryColumns } from './canonical.ts';
import { AUDIT_ENTRY_INVALID } from './errors.ts';

/*
 * The patterns are narrow on purpose: an audit entry names who, what and which fields, never a
 * value. No pattern admits '@', spaces or most punctuation, so an email, a name or a phone number
 * passed by mistake is refused instead of being written into an append-only log that cannot be
 * erased (GDPR Art. 5(1)(c) data minimisation; PCI DSS 4.0.1 10.2.2 what an entry records).
 */
const token = /^[A-Za-z0-9_.:-]{1,128}$/;
const auditEntrySchema = z.object({
  actor: z.string().regex(/^[a-z][a-z_]{0,31}(:[A-Za-z0-9_.-]{1,128})?$/),
  action: z.string().regex(/^[a-z][a-z0-9_]{0,31}(\.[a-z][a-z0-9_-]{0,31}){1,3}$/),
  subjectId: z.string().regex(token).nullish(),
  collection: z.string().regex(/^[a-z][a-z0-9_]{0,63}$/).nullish(),
  recordId: z.string().regex(token).nullish(),
  fields: z
    .array(z.string().regex(/^[A-Za-z_][A-Za-z0-9_.]{0,127}$/))
    .max(256)
    .readonly()
    .optional(),
  purpose: z.string().regex(/^[a-z][a-z0-9_.-]{0,63}$/).nullish(),
  outcome: z.enum(['success', 'denied', 'failure']),
  requestId: z.string().regex(token).nullish(),
});

export type AuditEntryInput = z.input<typeof auditEntrySchema>;

/** A validated entry as it is inserted: pending (no seq/prev_hash/hash yet), MAC set. */
export interface PendingRow extends EntryColumns {
  readonly mac: string;
}

/**
 * Turns entries into pending rows. Each row gets a nonce that is unique across processes (a
 * random per-instance prefix and a counter, no syscall per entry) and a MAC over its canonical
 * text, so that nobody without the audit MAC key can add a row the chainer will accept.
 */
export function createRowBuilder(macKey: KeyObject, now: () => Date): (entry: AuditEntryInput) => PendingRow {
  const prefix = randomBytes(12).toString('base64url');
  let counter = 0;
  return (entry) => {
    const parsed = auditEntrySchema.safeParse(entry);
    if (!parsed.success) {
      const path = parsed.error.issues[0]?.path.join('.') ?? 'entry';
      fail(AUDIT_ENTRY_INVALID, `audit entry field ${path} is malformed`, { field: path });
    }
    const e = parsed.data;
    counter += 1;
    const columns: EntryColumns = {
      nonce: `${prefix}.${counter.toString(36)}`,
      at: now().toISOString(),
      actor: e.actor,
      action: e.action,
      subject_id: e.subjectId ?? null,
      collection: e.collection ?? null,
      record_id: e.recordId ?? null,
      fields: JSON.stringify(e.fields ?? []),
      purpose: e.purpose ?? null,
      outcome: e.outcome,
      request_id: e.requestId ?? null,
    };
    return { ...columns, mac: entryMac(macKey, entryText(columns)) };
  };
}
