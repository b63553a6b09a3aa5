import type { FastifyInstance } from 'fastify';
import type { ZodTypeProvider } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { AppError, fail } from '../../kernel/errors.ts';
import { SessionErrors } from '../identity/sessions/session-errors.ts';
import type { SessionService } from '../identity/sessions/session-service.ts';
import { requireRecent } from '../identity/routes/routes-schemas.ts';
import { staffOf } from '../staff/context.ts';
import { staffErrors } from '../staff/routes-common.ts';
import type { StaffServices } from '../staff/services.ts';
import type { CardService } from './service.ts';

/**
 * Reveal: the full PAN for a staff member holding `cards.reveal` (no built-in role has it; a role
 * that grants it waits for a second admin), whose session passed a step-up within the
 * re-authentication window, with a stated reason (PCI DSS 3.4.1: only personnel with a
 * legitimate business need see the full PAN; 8.4.2: MFA for access to card data). Audited, and
 * the security officers (holders of incidents.manage) are told, by ids only. Staff scope only: no
 * API key reaches it.
 */
export function registerCardStaffRoutes(app: FastifyInstance, deps: { cards: CardService; staff: StaffServices; sessions: SessionService }): void {
  const r = app.withTypeProvider<ZodTypeProvider>();
  r.post('/v1/staff/cards/:token/reveal', {
    schema: {
      tags: ['cards'],
      summary: 'Reveal the full card number (cards.reveal, fresh step-up, a reason); audited and flagged to security officers',
      params: z.object({ token: z.string().min(1).max(40) }),
      body: z.strictObject({ reason: z.string().trim().min(10).max(500).meta({ description: 'Why the full number is needed (kept sealed, shown to auditors).' }) }),
      response: { 200: z.object({ token: z.string(), pan: z.string(), reveal_id: z.string() }).meta({ id: 'CardReveal' }), ...staffErrors, 410: staffErrors[403] },
    },
    handler: async (request) => {
      const staff = staffOf(request);
      const ctx = {
        actor: { ref: `staff:${staff.memberId}`, kind: 'staff' as const, purposes: [] },
        purpose: 'payments',
        requestId: request.id,
        clientAddress: request.ip,
        memberId: staff.memberId,
      };
      const token = request.params.token;
      try {
        const member = await deps.staff.directory.authorizeMember(staff, 'cards.reveal');
        // Current security training, as for any access to customer data.
        await deps.staff.standing.require(member);
        const auth = request.authSession;
        if (auth === null) fail(SessionErrors.IDENTITY_SESSION_REQUIRED, 'sign in first');
        requireRecent(deps.sessions, auth);
      } catch (error) {
        if (error instanceof AppError) await deps.cards.revealDenied(ctx, token);
        throw error;
      }
      const revealed = await deps.cards.reveal(ctx, token, request.body.reason);
      await deps.staff.notifier.tell('incidents.manage', 'Custos: a card number was revealed', `Staff member ${staff.memberId} revealed card ${token} (reveal ${revealed.revealId}).`);
      return { token, pan: revealed.pan, reveal_id: revealed.revealId };
    },
  });
}
