import { createHmac, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { Selectable } from 'kysely';
import type { Database } from '../../store/schema.ts';

/**
 * A ledger row's MAC (HMAC-SHA256 under the consent ledger key) over every column but `seq`: a row
 * edited in the database no longer matches it, and its id ties it to exactly one audit entry.
 */
export type LedgerRow = Selectable<Database['consent_ledger']>;
export type LedgerColumns = Omit<LedgerRow, 'seq' | 'mac'>;

export const ACTION_OF: Record<LedgerRow['status'], string> = {
  granted: 'consent.grant',
  withdrawn: 'consent.withdraw',
  pending: 'consent.pending',
  objected: 'consent.object',
  objection_upheld: 'consent.objection_upheld',
  objection_rejected: 'consent.objection_rejected',
};

function text(r: LedgerColumns): string {
  return JSON.stringify([r.id, r.subject_id, r.purpose, r.status, r.source, Number(r.notice_version), r.proof, r.actor, r.recorded_at, r.request_id]);
}

export function ledgerMac(key: KeyObject, r: LedgerColumns): string {
  return createHmac('sha256', key).update(text(r)).digest('base64url');
}

export function ledgerMacValid(key: KeyObject, r: LedgerRow): boolean {
  const want = Buffer.from(ledgerMac(key, r));
  const got = Buffer.from(r.mac);
  return want.length === got.length && timingSafeEqual(want, got);
}
