import type { KeyObject } from 'node:crypto';
import type { Kysely } from 'kysely';
import { createWebhookDelivery, WebhookDeliveryError } from '../../http/webhook-delivery.ts';
import { parseWebhookSecret } from '../../http/webhooks.ts';
import type { Clock } from '../../kernel/clock.ts';
import { fail } from '../../kernel/errors.ts';
import { newId } from '../../kernel/ids.ts';
import type { Logger } from '../../kernel/logger.ts';
import type { Database } from '../../store/schema.ts';
import type { AuditLog } from '../audit/service.ts';
import { ProcessorErrors } from './errors.ts';
import { openWebhookSecret } from './service.ts';

/**
 * Telling recipients of an erasure (GDPR Art. 19). When an erasure completes, every recipient in the
 * registry that has not been removed gets one notice row for the request. A recipient with a
 * webhook endpoint is sent `{ "type": "customer.erased", "timestamp", "data": { request_id,
 * customer_id, erased_at } }`, signed as Standard Webhooks 1.0.0 specifies (src/http/webhooks.ts),
 * the same `webhook-id` (the notice id) on every attempt; a 2xx confirms it. Failures are retried
 * by the dispatcher with growing waits kept in the row (so a restart loses nothing); after the
 * last attempt the notice is `dead` (the dead-letter list) until staff mark it confirmed or send
 * it again. A recipient without an endpoint waits for a staff mark (`awaiting_confirmation`).
 * Every send, failure and mark is audited; logs name codes, never the URL or the secret.
 */
export const NOTICE_RETRY_MS: readonly number[] = [30_000, 120_000, 600_000, 1_800_000, 3_600_000, 6 * 3_600_000, 24 * 3_600_000];
/** A dispatcher holds a due notice this long while it sends (another process leaves it alone). */
const CLAIM_MS = 60_000;
const BATCH = 20;

export type NoticeStatus = Database['processor_notices']['status'];

export interface NoticeView {
  id: string;
  processor_id: string;
  processor_name: string;
  status: NoticeStatus;
  attempts: number;
  next_attempt_at: string | null;
  last_error: string | null;
  confirmed_at: string | null;
  confirmed_by: string | null;
}

export interface ProcessorNotices {
  /** Records who must be told of this erasure (idempotent per request). */
  erased(notice: { customerId: string; requestId: string; erasedAt: string }): Promise<void>;
  /** Sends what is due, up to a batch; returns how many it tried. */
  dispatch(): Promise<number>;
  forRequest(requestId: string): Promise<NoticeView[]>;
  list(filter: { status?: NoticeStatus | undefined }): Promise<(NoticeView & { request_id: string })[]>;
  /** A staff mark: the recipient confirmed another way (or has no endpoint). */
  confirm(actor: string, requestId: string, processorId: string, requestIdOfCall?: string): Promise<NoticeView>;
  /** Sends a dead notice again from the first attempt. */
  retry(actor: string, requestId: string, processorId: string, requestIdOfCall?: string): Promise<NoticeView>;
  start(everyMs?: number): void;
  stop(): Promise<void>;
}

export function createProcessorNotices(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditLog, 'append'>;
  webhookKey: KeyObject;
  logger?: Logger;
  /** Tests: the waits between attempts. */
  retryMs?: readonly number[];
}): ProcessorNotices {
  const { db, clock, audit } = deps;
  const retryMs = deps.retryMs ?? NOTICE_RETRY_MS;
  const holder = newId('job');
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<unknown> | undefined;

  const views = async (where: { requestId?: string; status?: NoticeStatus | undefined }) => {
    let q = db
      .selectFrom('processor_notices as n')
      .innerJoin('processors as p', 'p.id', 'n.processor_id')
      .select(['n.id', 'n.request_id', 'n.processor_id', 'p.name', 'n.status', 'n.attempts', 'n.next_at', 'n.last_error', 'n.confirmed_at', 'n.confirmed_by'])
      .orderBy('n.created_at')
      .orderBy('n.id');
    if (where.requestId !== undefined) q = q.where('n.request_id', '=', where.requestId);
    if (where.status !== undefined) q = q.where('n.status', '=', where.status);
    const rows = await q.limit(1000).execute();
    return rows.map((r) => ({
      id: r.id,
      request_id: r.request_id,
      processor_id: r.processor_id,
      processor_name: r.name,
      status: r.status,
      attempts: Number(r.attempts),
      // A pending notice's next_at is its next attempt; a claim in flight shows as its expiry.
      next_attempt_at: r.status === 'pending' ? (r.next_at?.split('|')[0] ?? null) : null,
      last_error: r.last_error,
      confirmed_at: r.confirmed_at,
      confirmed_by: r.confirmed_by,
    }));
  };
  const one = async (requestId: string, processorId: string) => {
    const found = (await views({ requestId })).find((v) => v.processor_id === processorId);
    if (found === undefined) fail(ProcessorErrors.PROCESSORS_NOTICE_NOT_FOUND, 'no notice of that request to that recipient');
    const { request_id: _r, ...view } = found;
    return view;
  };

  async function send(n: Database['processor_notices'], p: Database['processors']): Promise<void> {
    const now = () => clock.now().toISOString();
    let error: string | undefined;
    const secret = openWebhookSecret(deps.webhookKey, p);
    if (p.webhook_url === null || secret === undefined) error = 'WEBHOOK_NOT_CONFIGURED';
    else {
      const delivery = createWebhookDelivery({ url: p.webhook_url, keys: [parseWebhookSecret(secret)] }, { clock, logger: deps.logger, label: 'processor', retryDelaysMs: [] });
      try {
        await delivery.send('customer.erased', { request_id: n.request_id, customer_id: n.customer_id, kind: n.kind, erased_at: n.created_at }, { id: n.id.replace(/^pnt_/, 'msg_') });
      } catch (e) {
        error = e instanceof WebhookDeliveryError ? e.code : 'WEBHOOK_UNREACHABLE';
      } finally {
        delivery.close();
      }
    }
    const attempts = Number(n.attempts) + 1;
    if (error === undefined) {
      await db.updateTable('processor_notices').set({ status: 'confirmed', attempts, next_at: null, last_error: null, confirmed_at: now(), confirmed_by: 'webhook' }).where('id', '=', n.id).execute();
      await audit.append({ actor: 'system:processors', action: 'processors.notice_confirmed', collection: 'rights_requests', recordId: n.request_id, fields: [n.processor_id], outcome: 'success' });
      return;
    }
    const wait = retryMs[attempts - 1];
    const dead = wait === undefined || error === 'WEBHOOK_GONE' || error === 'WEBHOOK_NOT_CONFIGURED';
    await db
      .updateTable('processor_notices')
      .set({ status: dead ? 'dead' : 'pending', attempts, last_error: error, next_at: dead ? null : new Date(clock.now().getTime() + wait).toISOString() })
      .where('id', '=', n.id)
      .execute();
    await audit.append({ actor: 'system:processors', action: dead ? 'processors.notice_dead' : 'processors.notice_failed', collection: 'rights_requests', recordId: n.request_id, fields: [n.processor_id], outcome: 'failure' });
    deps.logger?.warn({ notice: n.id, code: error, attempts, dead }, dead ? 'recipient notice given up: it is on the dead-letter list' : 'recipient notice failed; retrying later');
  }

  /** Runs a dispatch now unless one is running (tracked, so that stop() waits for it). */
  function kick(): void {
    running ??= service
      .dispatch()
      .catch((error: unknown) => deps.logger?.warn({ code: (error as { code?: unknown }).code }, 'recipient notice dispatch failed'))
      .finally(() => (running = undefined));
  }

  const service: ProcessorNotices = {
    async erased({ customerId, requestId, erasedAt }) {
      const recipients = await db.selectFrom('processors').select(['id', 'webhook_url']).where('removed_at', 'is', null).execute();
      for (const p of recipients) {
        await db
          .insertInto('processor_notices')
          .values({
            id: newId('pnt', clock.now().getTime()),
            request_id: requestId,
            processor_id: p.id,
            kind: 'erasure',
            customer_id: customerId,
            status: p.webhook_url === null ? 'awaiting_confirmation' : 'pending',
            attempts: 0,
            next_at: p.webhook_url === null ? null : erasedAt,
            last_error: null,
            created_at: erasedAt,
            confirmed_at: null,
            confirmed_by: null,
          })
          .onConflict((oc) => oc.columns(['request_id', 'processor_id']).doNothing())
          .execute();
      }
      if (recipients.length > 0) kick();
    },

    async dispatch() {
      const now = clock.now();
      const due = await db
        .selectFrom('processor_notices')
        .selectAll()
        .where('status', '=', 'pending')
        .where('next_at', '<=', now.toISOString())
        .orderBy('next_at')
        .limit(BATCH)
        .execute();
      let tried = 0;
      for (const n of due) {
        // Claimed by moving next_at past now with this holder's mark: another process skips it.
        const claim = `${new Date(now.getTime() + CLAIM_MS).toISOString()}|${holder}`;
        const taken = await db.updateTable('processor_notices').set({ next_at: claim }).where('id', '=', n.id).where('next_at', '=', n.next_at).where('status', '=', 'pending').executeTakeFirst();
        if (Number(taken.numUpdatedRows) !== 1) continue;
        const p = await db.selectFrom('processors').selectAll().where('id', '=', n.processor_id).executeTakeFirst();
        if (p === undefined) continue;
        tried++;
        await send(n, p);
      }
      return tried;
    },

    forRequest: async (requestId) => (await views({ requestId })).map(({ request_id: _r, ...v }) => v),
    list: (filter) => views({ status: filter.status }),

    async confirm(actor, requestId, processorId, requestIdOfCall) {
      const current = await one(requestId, processorId);
      if (current.status !== 'confirmed') {
        await db
          .updateTable('processor_notices')
          .set({ status: 'confirmed', next_at: null, confirmed_at: clock.now().toISOString(), confirmed_by: actor })
          .where('request_id', '=', requestId)
          .where('processor_id', '=', processorId)
          .execute();
        await audit.append({ actor, action: 'processors.notice_marked', collection: 'rights_requests', recordId: requestId, fields: [processorId], outcome: 'success', requestId: requestIdOfCall ?? null });
      }
      return one(requestId, processorId);
    },

    async retry(actor, requestId, processorId, requestIdOfCall) {
      const current = await one(requestId, processorId);
      if (current.status !== 'dead') fail(ProcessorErrors.PROCESSORS_NOTICE_NOT_DEAD, `only a dead notice is sent again; this one is ${current.status}`);
      await db
        .updateTable('processor_notices')
        .set({ status: 'pending', attempts: 0, next_at: clock.now().toISOString(), last_error: null })
        .where('request_id', '=', requestId)
        .where('processor_id', '=', processorId)
        .execute();
      await audit.append({ actor, action: 'processors.notice_retried', collection: 'rights_requests', recordId: requestId, fields: [processorId], outcome: 'success', requestId: requestIdOfCall ?? null });
      await service.dispatch();
      return one(requestId, processorId);
    },

    start(everyMs = 15_000) {
      if (timer !== undefined) return;
      timer = setInterval(kick, everyMs);
      timer.unref();
    },
    async stop() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
      await running;
    },
  };
  return service;
}
