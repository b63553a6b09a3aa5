/**
 * Dual control, shared by elevations (elevation-service.ts) and role changes (role-service.ts): a
 * request waits, pending, for a second person who may decide it; it lapses after PENDING_TTL_MS;
 * each step is audited by the service that owns the request (PCI DSS 4.0.1 7.2.2 least
 * privilege, 10.2.1.2 administrative actions logged).
 */

/** A request waits this long for a decision, then lapses. */
export const PENDING_TTL_MS = 24 * 3_600_000;

/** True while a request still waits for a decision: pending, and asked less than PENDING_TTL_MS ago. */
export function awaitsDecision(row: { status: string; requested_at: string }, now: Date): boolean {
  return row.status === 'pending' && now.getTime() - Date.parse(row.requested_at) <= PENDING_TTL_MS;
}
