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
const PATTERNS = {
  actor: /^[a-z][a-z_]{0,31}(:[A-Za-z0-9_.-]{1,128})?$/,
  action: /^[a-z][a-z0-9_]{0,31}(\.[a-z][a-z0-9_-]{0,31}){1,3}$/,
  subjectId: token,
  collection: /^[a-z][a-z0-9_]{0,63}$/,
  recordId: token,
  field: /^[A-Za-z_][A-Za-z0-9_.]{0,127}$/,
  // One purpose, or the comma-separated purposes a write went through (an API key stating none).
  purpose: /^[a-z][a-z0-9_.-]{0,63}(,[a-z][a-z0-9_.-]{0,63}){0,31}$/,
  requestId: token,
} as const;
const MAX_FIELDS = 256;
const OUTCOMES = ['success', 'denied', 'failure'] as const;
export const auditEntrySchema = z.object({
  actor: z.string().regex(PATTERNS.actor),
  action: z.string().regex(PATTERNS.action),
  subjectId: z.string().regex(PATTERNS.subjectId).nullish(),
  collection: z.string().regex(PATTERNS.collection).nullish(),
  recordId: z.string().regex(PATTERNS.recordId).nullish(),
  fields: z.array(z.string().regex(PATTERNS.field)).max(MAX_FIELDS).readonly().optional(),
  purpose: z.string().regex(PATTERNS.purpose).nullish(),
  outcome: z.enum(OUTCOMES),
  requestId: z.string().regex(PATTERNS.requestId).nullish(),
  /** The record version a vault write produced (`audit verify --records` compares it with the record). */
  recordVersion: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).nullish(),
});

/**
 * The same rules as the schema, tested directly: an entry is built on every read, and running
 * the Zod schema cost more than the rest of the entry. The schema still runs whenever this
 * answers no, to name what is wrong.
 */
export function plainlyValid(e: AuditEntryInput): boolean {
  const optional = (value: unknown, pattern: RegExp) => value === undefined || value === null || (typeof value === 'string' && pattern.test(value));
  return (
    typeof e.actor === 'string' &&
    PATTERNS.actor.test(e.actor) &&
    typeof e.action === 'string' &&
    PATTERNS.action.test(e.action) &&
    optional(e.subjectId, PATTERNS.subjectId) &&
    optional(e.collection, PATTERNS.collection) &&
    optional(e.recordId, PATTERNS.recordId) &&
    optional(e.purpose, PATTERNS.purpose) &&
    optional(e.requestId, PATTERNS.requestId) &&
    (OUTCOMES as readonly unknown[]).includes(e.outcome) &&
    (e.recordVersion === undefined || e.recordVersion === null || (Number.isSafeInteger(e.recordVersion) && e.recordVersion >= 0)) &&
    (e.fields === undefined ||
      (Array.isArray(e.fields) && e.fields.length <= MAX_FIELDS && e.fields.every((f) => typeof f === 'string' && PATTERNS.field.test(f))))
  );
}

export type AuditEntryInput = z.input<typeof auditEntrySchema>;

/** A validated entry as it is inserted: pending (no seq/prev_hash/hash yet), MAC set. */
export interface PendingRow extends EntryColumns {
  readonly record_version: number | null;
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
    let e = entry;
    if (!plainlyValid(entry)) {
      const parsed = auditEntrySchema.safeParse(entry);
      if (!parsed.success) {
        const path = parsed.error.issues[0]?.path.join('.') ?? 'entry';
        fail(AUDIT_ENTRY_INVALID, `audit entry field ${path} is malformed`, { field: path });
      }
      e = parsed.data;
    }
    counter += 1;
    const columns: EntryColumns & { record_version: number | null } = {
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
      record_version: e.recordVersion ?? null,
    };
    return { ...columns, mac: entryMac(macKey, entryText(columns)) };
  };
}
