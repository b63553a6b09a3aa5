import type { Kysely, Transaction } from 'kysely';
import type { Clock } from '../../kernel/clock.ts';
import { fail } from '../../kernel/errors.ts';
import { newId } from '../../kernel/ids.ts';
import type { Database } from '../../store/schema.ts';
import type { AuditLog } from '../audit/service.ts';
import type { Actor } from '../policy/service.ts';
import type { VaultSubjects } from '../vault/audience.ts';
import { daysBetween, deadline, endOfDay, holidays as holidaySet, utcDate, type Holidays, type Jurisdiction, type RequestKind } from './deadlines.ts';
import { RightsErrors } from './errors.ts';

/**
 * Data-subject requests (GDPR Art. 15–18, 20, 21; CCPA know/delete/correct/opt-out) as a state
 * machine with a deadline (deadlines.ts). Every transition is one transaction with its audit entry
 * (`rights.request.<state>`) and an event row, so the history shown is the history audited. The
 * states and transitions are drawn in docs/rights-requests.md.
 */
export const REQUEST_KINDS = ['access', 'portability', 'rectification', 'erasure', 'restriction', 'objection'] as const satisfies readonly RequestKind[];
export const STATES = ['received', 'verifying_identity', 'in_progress', 'extended', 'completed', 'denied'] as const;
export type RequestState = (typeof STATES)[number];

const NEXT: Readonly<Record<RequestState, readonly RequestState[]>> = {
  received: ['verifying_identity', 'in_progress', 'denied'],
  verifying_identity: ['in_progress', 'denied'],
  in_progress: ['extended', 'completed', 'denied'],
  extended: ['completed', 'denied'],
  completed: [],
  denied: [],
};
const CLOSED: readonly RequestState[] = ['completed', 'denied'];

export const CHANNELS = ['customer', 'api_key', 'staff', 'integration'] as const;
export type Channel = (typeof CHANNELS)[number];

/** How a requester's identity was verified: by the channel itself, or as staff record it. */
export const STAFF_VERIFICATION_METHODS = ['in_person', 'id_document', 'email_confirmation', 'phone_callback', 'signed_letter'] as const;
export const VERIFICATION_METHODS = ['customer_session', 'api_key', 'signed_webhook', ...STAFF_VERIFICATION_METHODS] as const;
export type VerificationMethod = (typeof VERIFICATION_METHODS)[number];

/** A request flagged as due soon has this many days left or fewer. */
export const DUE_SOON_DAYS = 7;

export interface RightsContext {
  readonly actor: Actor;
  readonly requestId: string;
}

export interface RequestEvent {
  state: RequestState;
  at: string;
  actor: string;
  reason: string | null;
}

export interface RequestView {
  id: string;
  kind: RequestKind;
  customer_id: string;
  jurisdiction: Jurisdiction;
  state: RequestState;
  channel: Channel;
  identity_verification: VerificationMethod | null;
  received_at: string;
  due_on: string;
  due_at: string;
  due_soon: boolean;
  acknowledge_by: string | null;
  extended: boolean;
  paused_days: number;
  reason: string | null;
  closed_at: string | null;
  /** Erasure: the signed receipt (JWS), once done. */
  receipt: string | null;
  /** Erasure: the last step done (erasure.ts); from `accepted` on nothing of the customer is released. */
  erasure_stage: 'accepted' | 'planned' | 'held' | 'account_closed' | 'shredded' | null;
  history: RequestEvent[];
}

export interface NewRequest {
  readonly kind: RequestKind;
  readonly customerId: string;
  readonly channel: Channel;
  /** null: identity still to be verified (the request waits in `verifying_identity`). */
  readonly verification: VerificationMethod | null;
  readonly jurisdiction?: Jurisdiction | undefined;
}

export interface Transition {
  readonly to: RequestState;
  readonly reason?: string | undefined;
  readonly verification?: VerificationMethod | undefined;
  /** An erasure completes only with its signed receipt (erasure.ts), never by a bare transition. */
  readonly receipt?: string | undefined;
  /** Written in the transition's own transaction (an export's download link): both commit or neither. */
  readonly within?: ((tx: Transaction<Database>) => Promise<void>) | undefined;
}

export interface RightsService {
  create(ctx: RightsContext, input: NewRequest): Promise<RequestView>;
  /** The customer's erasure request that was not denied, or a new one: repeating it changes nothing. */
  requestErasure(ctx: RightsContext, input: Omit<NewRequest, 'kind'>): Promise<{ request: RequestView; created: boolean }>;
  get(id: string): Promise<RequestView>;
  /** Open requests (not completed or denied), soonest deadline first; or all of one customer's. */
  list(filter: { customerId?: string | undefined }): Promise<RequestView[]>;
  transition(ctx: RightsContext, id: string, step: Transition): Promise<RequestView>;
  /** Audits the acceptance of an erasure request in the caller's transaction (`rights.erasure.accepted`; erasure.ts). */
  acceptedInTx(tx: Transaction<Database>, ctx: RightsContext, request: Pick<RequestView, 'id' | 'customer_id'>): Promise<void>;
  /**
   * Request records closed before `cutoff` (ISO time), which the retention sweep purges (CCPA
   * regulations 7101: kept 24 months); deleted with their history, their export links and the
   * restrictions they put in force that ended before `cutoff`, unless `dryRun`. Returns their ids.
   */
  purgeClosedBefore(cutoff: string, dryRun: boolean): Promise<string[]>;
}

export interface RightsDeps {
  readonly db: Kysely<Database>;
  readonly clock: Clock;
  readonly audit: Pick<AuditLog, 'appendInTx'>;
  readonly subjects: VaultSubjects;
  readonly jurisdiction: Jurisdiction;
  readonly holidays: readonly string[];
}

type Row = Database['rights_requests'];

export function createRightsService(deps: RightsDeps): RightsService {
  const { db, clock, audit, subjects } = deps;
  const off: Holidays = holidaySet(deps.holidays);

  const pausedDays = (row: Pick<Row, 'paused_days' | 'paused_since'>, today: string) =>
    row.paused_days + (row.paused_since === null ? 0 : daysBetween(row.paused_since, today));
  const dueOf = (row: Pick<Row, 'jurisdiction' | 'kind' | 'received_at' | 'extended' | 'paused_days' | 'paused_since'>, today: string, extended = row.extended === 1) =>
    deadline({
      jurisdiction: row.jurisdiction as Jurisdiction,
      kind: row.kind as RequestKind,
      receivedOn: utcDate(new Date(row.received_at)),
      extended,
      pausedDays: pausedDays(row, today),
      holidays: off,
    });

  async function view(row: Row): Promise<RequestView> {
    const today = utcDate(clock.now());
    const closed = row.closed_at !== null;
    // While open, the deadline is counted to today (a pending identity check keeps moving it).
    const dueOn = closed ? row.due_on : dueOf(row, today).dueOn;
    const events = await db.selectFrom('rights_request_events').selectAll().where('request_id', '=', row.id).orderBy('seq').execute();
    return {
      id: row.id,
      kind: row.kind as RequestKind,
      customer_id: row.customer_id,
      jurisdiction: row.jurisdiction as Jurisdiction,
      state: row.state as RequestState,
      channel: row.channel as Channel,
      identity_verification: row.identity_verification as VerificationMethod | null,
      received_at: row.received_at,
      due_on: dueOn,
      due_at: endOfDay(dueOn).toISOString(),
      due_soon: !closed && daysBetween(today, dueOn) <= DUE_SOON_DAYS,
      acknowledge_by: row.acknowledge_by,
      extended: row.extended === 1,
      paused_days: pausedDays(row, today),
      reason: row.reason,
      closed_at: row.closed_at,
      receipt: row.receipt,
      erasure_stage: row.erasure_stage as RequestView['erasure_stage'],
      history: events.map((e) => ({ state: e.state as RequestState, at: e.at, actor: e.actor, reason: e.reason })),
    };
  }

  async function load(id: string): Promise<Row> {
    const row = await db.selectFrom('rights_requests').selectAll().where('id', '=', id).executeTakeFirst();
    if (row === undefined) fail(RightsErrors.RIGHTS_REQUEST_NOT_FOUND, 'no data-subject request with that id');
    return row;
  }

  type Tx = Parameters<Parameters<ReturnType<Kysely<Database>['transaction']>['execute']>[0]>[0];
  async function record(tx: Tx, ctx: RightsContext, row: Pick<Row, 'id' | 'customer_id'>, state: RequestState, seq: number, reason: string | null, at: string) {
    await tx.insertInto('rights_request_events').values({ request_id: row.id, seq, state, actor: ctx.actor.ref, reason, at }).execute();
    await audit.appendInTx(tx, {
      actor: ctx.actor.ref,
      action: `rights.request.${state}`,
      subjectId: row.customer_id,
      collection: 'rights_requests',
      recordId: row.id,
      outcome: 'success',
      requestId: ctx.requestId,
    });
  }

  async function acceptedInTx(tx: Tx, ctx: RightsContext, request: Pick<Row, 'id' | 'customer_id'>) {
    await audit.appendInTx(tx, {
      actor: ctx.actor.ref,
      action: 'rights.erasure.accepted',
      subjectId: request.customer_id,
      collection: 'rights_requests',
      recordId: request.id,
      outcome: 'success',
      requestId: ctx.requestId,
    });
  }

  async function create(ctx: RightsContext, input: NewRequest): Promise<RequestView> {
    if (!(await subjects.exists(input.customerId))) fail(RightsErrors.RIGHTS_CUSTOMER_NOT_FOUND, 'no customer with that id; no request was recorded');
    const now = clock.now();
    const at = now.toISOString();
    const today = utcDate(now);
    const state: RequestState = input.verification === null ? 'verifying_identity' : 'in_progress';
    const base = {
      id: newId('rrq', now.getTime()),
      kind: input.kind,
      customer_id: input.customerId,
      jurisdiction: input.jurisdiction ?? deps.jurisdiction,
      received_at: at,
      paused_since: state === 'verifying_identity' ? today : null,
      paused_days: 0,
      extended: 0,
    };
    const due = dueOf(base, today);
    const row: Row = {
      ...base,
      state,
      channel: input.channel,
      identity_verification: input.verification,
      reason: null,
      due_on: due.dueOn,
      acknowledge_by: due.acknowledgeBy ?? null,
      closed_at: null,
      updated_at: at,
      erasure_plan: null,
      // A verified erasure is accepted as it is recorded: from this commit on nothing of the customer is released (erasure.ts).
      erasure_stage: input.kind === 'erasure' && state === 'in_progress' ? 'accepted' : null,
      receipt: null,
    };
    await db.transaction().execute(async (tx) => {
      await tx.insertInto('rights_requests').values(row).execute();
      await record(tx, ctx, row, 'received', 1, null, at);
      await record(tx, ctx, row, state, 2, null, at);
      if (row.erasure_stage === 'accepted') await acceptedInTx(tx, ctx, row);
    });
    return view(row);
  }

  async function openErasure(customerId: string): Promise<Row | undefined> {
    return db
      .selectFrom('rights_requests')
      .selectAll()
      .where('customer_id', '=', customerId)
      .where('kind', '=', 'erasure')
      .where('state', '<>', 'denied')
      .executeTakeFirst();
  }

  return {
    create,
    acceptedInTx,

    async requestErasure(ctx, input) {
      const existing = await openErasure(input.customerId);
      if (existing !== undefined) return { request: await view(existing), created: false };
      try {
        return { request: await create(ctx, { ...input, kind: 'erasure' }), created: true };
      } catch (error) {
        // Two at once: the partial unique index lets one in; the other answers with it.
        const raced = await openErasure(input.customerId);
        if (raced !== undefined) return { request: await view(raced), created: false };
        throw error;
      }
    },

    async get(id) {
      return view(await load(id));
    },

    async list(filter) {
      let q = db.selectFrom('rights_requests').selectAll();
      q = filter.customerId === undefined ? q.where('closed_at', 'is', null) : q.where('customer_id', '=', filter.customerId);
      const rows = await q.orderBy('due_on').orderBy('id').limit(1000).execute();
      // A pending identity check moves a deadline daily, so the order is that of the views.
      const views = await Promise.all(rows.map(view));
      return views.sort((a, b) => (a.due_on < b.due_on ? -1 : a.due_on > b.due_on ? 1 : a.id < b.id ? -1 : 1));
    },

    async purgeClosedBefore(cutoff, dryRun) {
      const rows = await db.selectFrom('rights_requests').select('id').where('closed_at', 'is not', null).where('closed_at', '<', cutoff).orderBy('id').execute();
      const ids = rows.map((r) => r.id);
      for (let i = 0; !dryRun && i < ids.length; i += 500) {
        const batch = ids.slice(i, i + 500);
        await db.transaction().execute(async (tx) => {
          await tx.deleteFrom('rights_request_events').where('request_id', 'in', batch).execute();
          // Their export links, and restrictions they put in force that have ended, go with them.
          await tx.deleteFrom('rights_exports').where('request_id', 'in', batch).execute();
          await tx.deleteFrom('rights_restrictions').where('request_id', 'in', batch).where('lifts_at', '<', cutoff).execute();
          await tx.deleteFrom('rights_requests').where('id', 'in', batch).execute();
        });
      }
      return ids;
    },

    async transition(ctx, id, step) {
      const row = await load(id);
      const from = row.state as RequestState;
      if (!NEXT[from].includes(step.to)) fail(RightsErrors.RIGHTS_TRANSITION_INVALID, `a request that is ${from} cannot become ${step.to}`, { from, to: step.to });
      const reason = step.reason?.trim() ?? '';
      if ((step.to === 'denied' || step.to === 'extended') && reason === '')
        fail(RightsErrors.RIGHTS_REASON_REQUIRED, `state the reason the customer is told when the request is ${step.to}`);
      if (from === 'verifying_identity' && step.to === 'in_progress' && step.verification === undefined)
        fail(RightsErrors.RIGHTS_VERIFICATION_REQUIRED, 'name how the requester was verified (identity_verification)');
      if (step.to === 'denied' && row.kind === 'erasure' && row.erasure_stage !== null)
        fail(RightsErrors.RIGHTS_TRANSITION_INVALID, 'an erasure that was accepted runs to its end; it can no longer be denied', { from, to: step.to });
      if (step.to === 'completed' && row.kind === 'erasure' && step.receipt === undefined)
        fail(RightsErrors.RIGHTS_ERASURE_NOT_RUN, 'an erasure request completes by running the erasure (POST /v1/rights/requests/{id}/erasure)');
      const now = clock.now();
      const at = now.toISOString();
      const today = utcDate(now);
      if (step.to === 'extended' && (row.extended === 1 || today > dueOf(row, today, false).dueOn))
        fail(RightsErrors.RIGHTS_EXTENSION_TOO_LATE, 'a request is extended once, before its first deadline');
      const paused_days = pausedDays(row, today);
      const next = {
        state: step.to,
        paused_since: null,
        paused_days,
        extended: step.to === 'extended' ? 1 : row.extended,
        identity_verification: step.verification ?? row.identity_verification,
        reason: step.to === 'denied' || step.to === 'extended' ? reason : row.reason,
        closed_at: CLOSED.includes(step.to) ? at : null,
        updated_at: at,
        receipt: step.receipt ?? row.receipt,
      };
      const due = dueOf({ ...row, ...next }, today);
      await db.transaction().execute(async (tx) => {
        const changed = await tx
          .updateTable('rights_requests')
          .set({ ...next, due_on: due.dueOn })
          .where('id', '=', id)
          .where('state', '=', from)
          .executeTakeFirst();
        if (Number(changed.numUpdatedRows) !== 1) fail(RightsErrors.RIGHTS_TRANSITION_INVALID, 'the request changed meanwhile; nothing changed', { from, to: step.to });
        const last = await tx.selectFrom('rights_request_events').select((eb) => eb.fn.max('seq').as('seq')).where('request_id', '=', id).executeTakeFirst();
        await record(tx, ctx, row, step.to, Number(last?.seq ?? 0) + 1, step.to === 'denied' || step.to === 'extended' ? reason : null, at);
        await step.within?.(tx);
      });
      return view(await load(id));
    },
  };
}
