import { fail } from '../../../kernel/errors.ts';
import type { PolicyGuard } from '../../policy/service.ts';
import { SessionErrors } from './session-errors.ts';

/**
 * A customer actor reads one data subject: itself. The /v1/me routes only ever name the session's
 * own customer, and this guard at the policy decision point makes that a rule rather than a habit
 * of the routes (ASVS 8.2.2: object-level authorisation; GDPR Art. 15 access is to one's own data).
 */
export const customerSelfGuard: PolicyGuard = async (actor, _purpose, subjectId) => {
  if (actor.kind !== 'customer') return;
  if (actor.ref !== `customer:${subjectId}`) fail(SessionErrors.IDENTITY_SUBJECT_FORBIDDEN, "a customer session reads only its own customer's data");
};

/** The actor a customer session reads its own data as: purpose `account` only. */
export function customerActor(customerId: string) {
  return Object.freeze({ ref: `customer:${customerId}`, kind: 'customer' as const, purposes: Object.freeze(['account']) });
}
