import { sql, type Kysely } from 'kysely';
import type { Clock } from '../../kernel/clock.ts';
import type { Logger } from '../../kernel/logger.ts';
import { fail } from '../../kernel/errors.ts';
import { newId } from '../../kernel/ids.ts';
import type { Store } from '../../store/database.ts';
import type { Database } from '../../store/schema.ts';
import type { AuditLog } from '../audit/service.ts';
import type { MailMessage } from '../identity/mail/mailer.ts';
import type { Inventory } from '../inventory/index.ts';
import { restrictionOf } from './restriction-column.ts';
import type { RestrictionGate } from '../policy/service.ts';
import { EXPORT_PURPOSE, type CallContext, type VaultService } from '../vault/service.ts';
import { RightsErrors } from './errors.ts';
import { RIGHTS_ACTOR } from './export.ts';
import { restrictionLiftMail } from './mails.ts';
import type { RequestView, RightsContext, RightsService } from './service.ts';

/**
 * Restriction of processing (GDPR Art. 18). Completing a restriction request puts the restriction
 * in force in the same transaction: from then on the customer's data is stored, and the policy
 * decision point (policy/service.ts, through the `RestrictionGate` below) releases it only as
 * Art. 18(2) allows — for legal claims and obligations (`legal_obligation`), for the rights
 * process (`rights`), to the customer themself, and for purposes the customer consented to when
 * asking (`allow_purposes`, the customer's own request only). Writes go on: storage is what a
 * restriction keeps.
 *
 * Lifting it tells the customer first (Art. 18(3)): the mail goes out (nothing personal but the
 * address) before anything is written, and the restriction ends `notice_days` later; if the
 * customer cannot be told, nothing changes.
 */
export interface RestrictionView {
  restricted: boolean;
  request_id: string | null;
  since: string | null;
  allowed_purposes: string[];
  lifts_at: string | null;
  lift_reason: string | null;
}

export interface RestrictionService {
  readonly gate: RestrictionGate;
  /** RIGHTS_PURPOSE_UNKNOWN unless every purpose is declared (checked before a request is filed). */
  checkPurposes(purposes: readonly string[]): void;
  /** Completes a restriction request, putting the restriction in force (one already in force is kept). */
  apply(ctx: RightsContext, requestId: string, allowPurposes?: readonly string[]): Promise<RequestView>;
  /** Tells the customer, then schedules the end of their restriction `noticeDays` from now. */
  lift(ctx: RightsContext, customerId: string, input: { reason: string; noticeDays: number }): Promise<RestrictionView>;
  view(customerId: string): Promise<RestrictionView>;
}

type Row = Database['rights_restrictions'];

export function createRestrictionService(deps: {
  db: Kysely<Database>;
  read: Store['read'];
  clock: Clock;
  audit: Pick<AuditLog, 'append'>;
  rights: RightsService;
  inventory: Inventory;
  vault: Pick<VaultService, 'customerEmail'>;
  shopName: string;
  mail: (message: MailMessage) => Promise<unknown>;
  logger?: Logger;
}): RestrictionService {
  const { db, clock, rights } = deps;
  const IN_FORCE = db.selectNoFrom(restrictionOf(db, '', '').as('restriction')).compile().sql;
  const current = async (customerId: string): Promise<Row | undefined> =>
    db
      .selectFrom('rights_restrictions')
      .selectAll()
      .where('customer_id', '=', customerId)
      .where((eb) => eb.or([eb('lifts_at', 'is', null), eb('lifts_at', '>', clock.now().toISOString())]))
      .orderBy('started_at', 'desc')
      .executeTakeFirst();
  const viewOf = (row: Row | undefined): RestrictionView => ({
    restricted: row !== undefined,
    request_id: row?.request_id ?? null,
    since: row?.started_at ?? null,
    allowed_purposes: row === undefined ? [] : (JSON.parse(row.allowed_purposes) as string[]),
    lifts_at: row?.lifts_at ?? null,
    lift_reason: row?.lift_reason ?? null,
  });

  function checkPurposes(purposes: readonly string[]): void {
    const unknown = purposes.filter((p) => !deps.inventory.purposes.has(p));
    if (unknown.length > 0) fail(RightsErrors.RIGHTS_PURPOSE_UNKNOWN, `allow_purposes names purposes the inventory does not declare: ${unknown.join(', ')}`);
  }

  return {
    gate: {
      async facts(subjectId) {
        const [row] = await deps.read<{ restriction: string | null }>(IN_FORCE, [subjectId, subjectId, clock.now().toISOString()]);
        return { restriction: row?.restriction ?? null };
      },
      async refused(actor, purpose, subjectId, why = 'restricted') {
        await deps.audit.append({ actor: actor.ref, action: why === 'erasing' ? 'rights.erasure.read_refused' : 'rights.restriction.read_refused', subjectId, purpose, outcome: 'denied' });
      },
    },

    checkPurposes,

    async apply(ctx, requestId, allowPurposes = []) {
      checkPurposes(allowPurposes);
      const request = await rights.get(requestId);
      if (request.kind !== 'restriction') fail(RightsErrors.RIGHTS_TRANSITION_INVALID, 'only a restriction request puts a restriction in force');
      const open = await current(request.customer_id);
      const now = clock.now().toISOString();
      return rights.transition(ctx, requestId, {
        to: 'completed',
        within: async (tx) => {
          // One in force without an end stays as it is (its consents with it); one ending is replaced.
          if (open?.lifts_at === null) return;
          await tx
            .insertInto('rights_restrictions')
            .values({ id: newId('rst', clock.now().getTime()), customer_id: request.customer_id, request_id: requestId, started_at: now, allowed_purposes: JSON.stringify([...new Set(allowPurposes)].sort()), lift_reason: null, lift_noticed_at: null, lifts_at: null })
            .execute();
          if (open !== undefined) await tx.updateTable('rights_restrictions').set({ lifts_at: now }).where('id', '=', open.id).execute();
        },
      });
    },

    async lift(ctx, customerId, input) {
      const open = await current(customerId);
      if (open === undefined || open.lifts_at !== null) fail(RightsErrors.RIGHTS_NOT_RESTRICTED, 'no restriction without a scheduled end is in force for this customer');
      const now = clock.now();
      const liftsAt = new Date(now.getTime() + input.noticeDays * 86_400_000).toISOString();
      // Art. 18(3): told before it is lifted; a customer who cannot be told keeps the restriction.
      const call: CallContext = { actor: RIGHTS_ACTOR, purpose: EXPORT_PURPOSE, requestId: ctx.requestId };
      try {
        const to = await deps.vault.customerEmail(call, customerId);
        if (to === undefined) throw new Error('no address');
        await deps.mail(restrictionLiftMail({ to, shopName: deps.shopName, liftsAt }));
      } catch (error) {
        deps.logger?.warn({ code: (error as { code?: unknown }).code }, 'the restriction-lift notice could not be sent');
        fail(RightsErrors.RIGHTS_RESTRICTION_NOTICE_FAILED, 'the customer could not be told of the lift (no email address, or the mail failed); the restriction stays');
      }
      await db.updateTable('rights_restrictions').set({ lift_reason: input.reason, lift_noticed_at: now.toISOString(), lifts_at: liftsAt }).where('id', '=', open.id).execute();
      await deps.audit.append({ actor: ctx.actor.ref, action: 'rights.restriction.lift_noticed', subjectId: customerId, collection: 'rights_restrictions', recordId: open.id, outcome: 'success', requestId: ctx.requestId });
      return viewOf({ ...open, lift_reason: input.reason, lift_noticed_at: now.toISOString(), lifts_at: liftsAt });
    },

    async view(customerId) {
      return viewOf(await current(customerId));
    },
  };
}

/** The gate the policy is built with before the restriction service exists (runtime.ts wires it after). */
export function restrictionGateFor(service: () => RestrictionService | undefined): RestrictionGate {
  return {
    facts: async (subjectId) => (await service()?.gate.facts(subjectId)) ?? { restriction: null },
    refused: async (actor, purpose, subjectId, why) => service()?.gate.refused(actor, purpose, subjectId, why),
  };
}
