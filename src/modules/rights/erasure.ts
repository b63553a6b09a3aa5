import type { Kysely } from 'kysely';
import type { AuditSigner } from '../../crypto/keyring.ts';
import type { Clock } from '../../kernel/clock.ts';
import type { Logger } from '../../kernel/logger.ts';
import { fail } from '../../kernel/errors.ts';
import { leasedJob } from '../../store/job-lease.ts';
import type { Database } from '../../store/schema.ts';
import type { AuditLog } from '../audit/service.ts';
import type { Inventory } from '../inventory/index.ts';
import type { VaultErasure } from '../vault/erasure.ts';
import type { VaultSubjects } from '../vault/audience.ts';
import { erasurePlan, type ErasurePlan } from './erasure-plan.ts';
import { RightsErrors } from './errors.ts';
import { signReceipt } from './receipt.ts';
import type { RequestView, RightsContext, RightsService } from './service.ts';

/**
 * Runs an erasure request (GDPR Art. 17) in two parts.
 *
 * On the request path, bounded work whatever the customer holds: the request is **accepted** —
 * its `erasure_stage` becomes `accepted` (when a verified request is filed, in the transaction
 * that records it: service.ts; else here), audited `rights.erasure.accepted` — and from that
 * commit on the policy releases nothing of the customer to anyone (the restriction gate's one
 * statement sees the accepted request: restrictions.ts, policy/service.ts). The answer is the
 * request, `in_progress`.
 *
 * Behind the answer (and after a crash, by the leased sweep `resumeAccepted`, once a request made
 * no progress for five minutes), a sequence of steps,
 * each recorded on the request before the next, irreversible ones last, every one safe to repeat:
 * killed at any point and run again, it finishes the plan fixed by its first run.
 *
 * 1. planned: computed from the inventory (erasure-plan.ts) and stored on the request;
 * 2. held: fields held for a legal obligation re-sealed under hold keys, HOLD_BATCH records per
 *    transaction (vault/erasure.ts `holdMany`);
 * 3. account_closed: the customer's sessions revoked and sign-in accounts removed, so the same
 *    email can sign up again as a new customer;
 * 4. shredded: in one transaction the customer's data key is destroyed and their records and
 *    blind indexes deleted — nothing half-erased is ever readable;
 * 5. processors told (Art. 19; through `ProcessorNotifier`: src/modules/processors/notices.ts
 *    records a notice per current recipient and sends it as a signed webhook), the receipt
 *    signed, the request completed.
 */
export type ErasureStage = 'accepted' | 'planned' | 'held' | 'account_closed' | 'shredded';

/** Who else must be told of an erasure (GDPR Art. 19). The default tells no one. */
export interface ProcessorNotifier {
  erased(notice: { customerId: string; requestId: string; erasedAt: string }): Promise<void>;
}
export const noProcessors: ProcessorNotifier = { erased: async () => undefined };

/** Closes a customer's sign-in accounts (identity): sessions revoked, accounts removed. */
export interface AccountCloser {
  closeCustomer(customerId: string): Promise<number>;
}

/** The account closer over identity's services: every linked account's sessions revoked, then the account removed. */
export function identityAccountCloser(identity: {
  accounts: { idsForCustomer(customerId: string): Promise<string[]>; remove(id: string): Promise<void> };
  sessions: { revokeAll(accountId: string, reason: string): Promise<number> };
}): AccountCloser {
  return {
    async closeCustomer(customerId) {
      const ids = await identity.accounts.idsForCustomer(customerId);
      for (const id of ids) {
        await identity.sessions.revokeAll(id, 'erasure');
        await identity.accounts.remove(id);
      }
      return ids.length;
    },
  };
}

export interface ErasureService {
  /** The plan for a customer as it stands now (nothing runs). */
  plan(customerId: string): Promise<ErasurePlan>;
  /**
   * The request path: accepts a verified erasure request (from then on nothing of the customer is
   * released) and runs it behind the answer; answers with the request as it stands (a completed
   * one as it is). Bounded work whatever the customer holds.
   */
  accept(ctx: RightsContext, requestId: string): Promise<RequestView>;
  /** Accepts if need be and runs (or resumes) the erasure to its end now; a completed one is answered as it is. */
  run(ctx: RightsContext, requestId: string): Promise<RequestView>;
  /** Runs every accepted erasure not yet completed that made no progress for five minutes (after a crash, a kill): the leased sweep. Returns how many ran. */
  resumeAccepted(): Promise<number>;
  /** Resolves once no erasure runs in this process (shutdown, tests). */
  idle(): Promise<void>;
  /** Runs `resumeAccepted` every `everyMs` in the process holding the `erasures` lease (servers). */
  start(everyMs?: number): void;
  /** Stops the sweep and waits for every run in this process. */
  stop(): Promise<void>;
}

/** Who runs erasures resumed by the sweep. */
export const ERASURE_ACTOR = Object.freeze({ ref: 'system:erasure', kind: 'system' as const, purposes: Object.freeze([] as string[]) });

export interface ErasureDeps {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly audit: Pick<AuditLog, 'append'>;
  readonly rights: RightsService;
  readonly vault: VaultErasure;
  readonly subjects: VaultSubjects;
  readonly inventory: Inventory;
  readonly bookkeepingCountry: string;
  /** CUSTOS_KEK_ROTATION_AFTER_ERASURE_DAYS: when the receipt says backups stop opening the destroyed key. */
  readonly kekRotationAfterErasureDays: number;
  readonly signer: AuditSigner;
  readonly accounts: AccountCloser;
  readonly processors?: ProcessorNotifier;
  /** Called after each step is recorded (tests stop a run there). */
  readonly afterStage?: (stage: ErasureStage) => Promise<void>;
  readonly logger?: Logger;
}

const ORDER: readonly ErasureStage[] = ['accepted', 'planned', 'held', 'account_closed', 'shredded'];
const RUNNABLE = ['in_progress', 'extended'];
const SWEEP_LEASE_MS = 5 * 60_000;
/** An accepted erasure whose last step is older than this is taken to be interrupted. */
const SWEEP_STALE_MS = 5 * 60_000;
const done = (stage: string | null, step: ErasureStage) => stage !== null && ORDER.indexOf(stage as ErasureStage) >= ORDER.indexOf(step);

export function createErasureService(deps: ErasureDeps): ErasureService {
  const { db, clock, rights, vault } = deps;
  const processors = deps.processors ?? noProcessors;

  async function plan(customerId: string): Promise<ErasurePlan> {
    return erasurePlan(deps.inventory, customerId, await vault.records(customerId), clock.now(), deps.bookkeepingCountry);
  }

  async function stage(ctx: RightsContext, request: RequestView, step: ErasureStage, extra: { erasure_plan?: string } = {}) {
    await db.updateTable('rights_requests').set({ erasure_stage: step, updated_at: clock.now().toISOString(), ...extra }).where('id', '=', request.id).execute();
    await deps.audit.append({
      actor: ctx.actor.ref,
      action: `rights.erasure.${step}`,
      subjectId: request.customer_id,
      collection: 'rights_requests',
      recordId: request.id,
      outcome: 'success',
      requestId: ctx.requestId,
    });
    await deps.afterStage?.(step);
  }

  function runnable(request: RequestView) {
    if (request.kind !== 'erasure') fail(RightsErrors.RIGHTS_NOT_ERASURE, 'only an erasure request can be run as an erasure');
    if (request.state !== 'completed' && !RUNNABLE.includes(request.state))
      fail(RightsErrors.RIGHTS_TRANSITION_INVALID, `a request that is ${request.state} cannot be run`, { from: request.state, to: 'completed' });
  }

  /** Records the acceptance of a request filed before it could be accepted (staff verified it later). */
  async function accepted(ctx: RightsContext, request: RequestView): Promise<void> {
    await db.transaction().execute(async (tx) => {
      const changed = await tx
        .updateTable('rights_requests')
        .set({ erasure_stage: 'accepted', updated_at: clock.now().toISOString() })
        .where('id', '=', request.id)
        .where('erasure_stage', 'is', null)
        .where('state', 'in', RUNNABLE)
        .executeTakeFirst();
      if (Number(changed.numUpdatedRows) === 1) await deps.rights.acceptedInTx(tx, ctx, request);
    });
  }

  async function execute(ctx: RightsContext, requestId: string): Promise<RequestView> {
    const request = await rights.get(requestId);
    runnable(request);
    if (request.state === 'completed') return request;
    const row = await db.selectFrom('rights_requests').select(['erasure_plan', 'erasure_stage']).where('id', '=', requestId).executeTakeFirstOrThrow();
    let current = row.erasure_stage;
    if (current === null) {
      await accepted(ctx, request);
      current = 'accepted';
    }
    let fixed: ErasurePlan;
    if (row.erasure_plan === null) {
      fixed = await plan(request.customer_id);
      await stage(ctx, request, 'planned', { erasure_plan: JSON.stringify(fixed) });
      current = 'planned';
    } else fixed = JSON.parse(row.erasure_plan) as ErasurePlan;

    if (!done(current, 'held')) {
      await vault.holdMany(request.customer_id, fixed.hold);
      await stage(ctx, request, 'held');
    }
    if (!done(current, 'account_closed')) {
      await deps.accounts.closeCustomer(request.customer_id);
      await stage(ctx, request, 'account_closed');
    }
    if (!done(current, 'shredded')) {
      await vault.shred(request.customer_id);
      await stage(ctx, request, 'shredded');
    }
    const erasedAt = clock.now().toISOString();
    await processors.erased({ customerId: request.customer_id, requestId, erasedAt });
    const receipt = signReceipt(deps.signer, {
      iss: 'custos',
      sub: request.customer_id,
      jti: requestId,
      iat: Math.floor(clock.now().getTime() / 1000),
      erased_at: erasedAt,
      erased: fixed.erase,
      held: fixed.hold.map((h) => ({ collection: h.collection, record_id: h.record_id, fields: h.fields, until: h.until, ground: h.ground })),
      bookkeeping_country: fixed.bookkeeping_country,
      // The retention sweep rotates and retires the KEK this many days after the destruction
      // (CUSTOS_KEK_ROTATION_AFTER_ERASURE_DAYS; at the first hourly sweep once due).
      backups_unreadable_from: new Date(Date.parse(erasedAt) + deps.kekRotationAfterErasureDays * 86_400_000).toISOString(),
      backups:
        "The customer's data key was destroyed; copies of it in backups become unreadable once the key-encryption key that wrapped it is rotated and retired, which the retention sweep does from backups_unreadable_from on.",
    });
    try {
      return await rights.transition(ctx, requestId, { to: 'completed', receipt });
    } catch (error) {
      // A run alongside completed it first: answer with that.
      const now = await rights.get(requestId);
      if (now.state === 'completed') return now;
      throw error;
    }
  }

  // One run per request in this process; a second caller waits for the first.
  const running = new Map<string, Promise<RequestView>>();
  function run(ctx: RightsContext, requestId: string, behind = false): Promise<RequestView> {
    let pending = running.get(requestId);
    if (pending === undefined) {
      pending = (async () => {
        // Behind an answer: the answer goes first.
        if (behind) await new Promise((resolve) => setImmediate(resolve));
        return execute(ctx, requestId);
      })().finally(() => running.delete(requestId));
      running.set(requestId, pending);
    }
    return pending;
  }
  const warn = (requestId: string) => (error: unknown) =>
    deps.logger?.warn({ code: (error as { code?: unknown }).code, request: requestId }, 'an erasure stopped; the erasure sweep resumes it (or POST /v1/rights/requests/{id}/erasure)');

  async function idle() {
    while (running.size > 0) await Promise.allSettled([...running.values()]);
  }

  async function resumeAccepted() {
    const rows = await db
      .selectFrom('rights_requests')
      .select('id')
      .where('kind', '=', 'erasure')
      .where('state', 'in', RUNNABLE)
      .where('erasure_stage', 'is not', null)
      // Left to the run that is moving it: only one without progress for SWEEP_STALE_MS.
      .where('updated_at', '<', new Date(clock.now().getTime() - SWEEP_STALE_MS).toISOString())
      .orderBy('received_at')
      .limit(1000)
      .execute();
    let ran = 0;
    for (const { id } of rows) await run({ actor: ERASURE_ACTOR, requestId: `erasure-sweep:${id}` }, id).then(() => ran++, warn(id));
    return ran;
  }
  // Erasures accepted and interrupted (a process killed, a database gone) are resumed by one
  // process at a time; a lease held by a killed process blocks the others for SWEEP_LEASE_MS.
  const sweep = leasedJob({ db, clock, name: 'erasures', leaseMs: SWEEP_LEASE_MS, run: resumeAccepted, onError: (error) => warn('sweep')(error) });

  return {
    async plan(customerId) {
      if (!(await deps.subjects.exists(customerId))) fail(RightsErrors.RIGHTS_CUSTOMER_NOT_FOUND, 'no customer with that id');
      return plan(customerId);
    },

    async accept(ctx, requestId) {
      const request = await rights.get(requestId);
      runnable(request);
      if (request.state === 'completed') return request;
      await accepted(ctx, request);
      run(ctx, requestId, true).catch(warn(requestId));
      return rights.get(requestId);
    },

    run: (ctx, requestId) => run(ctx, requestId),

    resumeAccepted,

    idle,
    start: (everyMs = 60_000) => sweep.start(everyMs),
    async stop() {
      await sweep.stop();
      await idle();
    },
  };
}
