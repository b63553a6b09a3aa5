import { z } from 'zod';
import type { StaffContext } from './ports.ts';

/** Shapes shared by the staff route files. */
export const errorBody = z.object({ error: z.object({ code: z.string(), message: z.string(), request_id: z.string() }).loose() });
export const staffErrors = { 400: errorBody, 401: errorBody, 403: errorBody, 404: errorBody, 409: errorBody };
export const idParam = (prefix: string) => z.object({ id: z.string().regex(new RegExp(`^${prefix}_[0-9A-HJKMNP-TV-Z]{26}$`), `must be a ${prefix}_ id`) });
export const operator = (ctx: StaffContext) => ({ kind: 'staff' as const, memberId: ctx.memberId, mfaVerifiedAt: ctx.mfaVerifiedAt });

