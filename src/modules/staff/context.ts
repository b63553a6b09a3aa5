import type { FastifyRequest } from 'fastify';
import { fail } from '../../kernel/errors.ts';
import { StaffErrors } from './errors.ts';
import type { StaffContext } from './ports.ts';

declare module 'fastify' {
  interface FastifyRequest {
    /**
     * The signed-in staff member, set by the staff session layer (which should
     * `decorateRequest('staff', null)` and fill it in an onRequest hook); null without one.
     */
    staff?: StaffContext | null;
  }
}

/** The caller's staff context, or 401 STAFF_SESSION_REQUIRED. */
export function staffOf(request: FastifyRequest): StaffContext {
  const ctx = request.staff;
  if (ctx === undefined || ctx === null) fail(StaffErrors.STAFF_SESSION_REQUIRED, 'sign in as a staff member');
  return ctx;
}
