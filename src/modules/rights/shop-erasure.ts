import type { Kysely } from 'kysely';
import type { Clock } from '../../kernel/clock.ts';
import { fail } from '../../kernel/errors.ts';
import { newId } from '../../kernel/ids.ts';
import type { Logger } from '../../kernel/logger.ts';
import type { Database } from '../../store/schema.ts';
import type { AuditLog } from '../audit/service.ts';
import type { VaultErasure } from '../vault/erasure.ts';
import type { ErasureService } from './erasure.ts';
import { RightsErrors } from './errors.ts';
import type { RightsService } from './service.ts';
import { SHOPIFY_ACTOR } from './shopify.ts';

/**
 * The erasure of every customer of a shop that Shopify's `shop/redact` asks for (48 hours after
 * the app was uninstalled). It never runs on the webhook alone: a staff member holding
 * `rights.manage` approves it and a second, different one confirms it (dual control). Then every
 * customer is erased as an erasure request of their own (integration, verified by the signed
 * webhook): holds for bookkeeping law apply as always, and each has its receipt. The run walks
 * the customers by id and can be started again (`POST …/run`) until it completes.
 */
export type ShopErasure = Database['shop_erasures'];

export interface ShopErasures {
  record(input: { shopDomain: string; webhookId: string }): Promise<string>;
  list(): Promise<ShopErasure[]>;
  get(id: string): Promise<ShopErasure>;
  /** The first approval, then the confirmation by another member; the confirmation starts the run. */
  approve(memberRef: string, id: string, requestId: string): Promise<ShopErasure>;
  /** Erases the customers still there; resolves when none is left. */
  run(id: string, requestId: string): Promise<ShopErasure>;
}

export function createShopErasures(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: Pick<AuditLog, 'append'>;
  rights: RightsService;
  erasure: Pick<ErasureService, 'run'>;
  vault: Pick<VaultErasure, 'customerIds'>;
  logger?: Logger;
}): ShopErasures {
  const { db, clock, audit } = deps;
  const running = new Map<string, Promise<ShopErasure>>();
  const note = (actor: string, action: string, id: string, requestId: string) =>
    audit.append({ actor, action, collection: 'shop_erasures', recordId: id, outcome: 'success', requestId });

  async function get(id: string): Promise<ShopErasure> {
    const row = await db.selectFrom('shop_erasures').selectAll().where('id', '=', id).executeTakeFirst();
    if (row === undefined) fail(RightsErrors.RIGHTS_SHOP_ERASURE_NOT_FOUND, 'no shop erasure with that id');
    return row;
  }

  async function erase(id: string, requestId: string): Promise<ShopErasure> {
    const ctx = { actor: SHOPIFY_ACTOR, requestId };
    let after = '';
    for (;;) {
      const ids = await deps.vault.customerIds(after, 100);
      if (ids.length === 0) break;
      for (const customerId of ids) {
        const { request } = await deps.rights.requestErasure(ctx, { customerId, channel: 'integration', verification: 'signed_webhook' });
        await deps.erasure.run(ctx, request.id);
        await db.updateTable('shop_erasures').set((eb) => ({ customers_erased: eb('customers_erased', '+', 1) })).where('id', '=', id).execute();
      }
      after = ids.at(-1)!;
    }
    await db.updateTable('shop_erasures').set({ state: 'completed', completed_at: clock.now().toISOString() }).where('id', '=', id).execute();
    await note(SHOPIFY_ACTOR.ref, 'rights.shop_erasure.completed', id, requestId);
    return get(id);
  }

  const service: ShopErasures = {
    async record(input) {
      const now = clock.now();
      const id = newId('she', now.getTime());
      await db
        .insertInto('shop_erasures')
        .values({ id, shop_domain: input.shopDomain, webhook_id: input.webhookId, received_at: now.toISOString(), state: 'pending', approved_by: null, approved_at: null, confirmed_by: null, confirmed_at: null, completed_at: null, customers_erased: 0 })
        .execute();
      await note(SHOPIFY_ACTOR.ref, 'rights.shop_erasure.recorded', id, input.webhookId);
      return id;
    },

    list: () => db.selectFrom('shop_erasures').selectAll().orderBy('received_at', 'desc').orderBy('id').limit(100).execute(),
    get,

    async approve(memberRef, id, requestId) {
      const row = await get(id);
      const at = clock.now().toISOString();
      if (row.state === 'pending') {
        const done = await db.updateTable('shop_erasures').set({ state: 'approved', approved_by: memberRef, approved_at: at }).where('id', '=', id).where('state', '=', 'pending').executeTakeFirst();
        if (Number(done.numUpdatedRows) !== 1) fail(RightsErrors.RIGHTS_SHOP_ERASURE_STATE, 'the shop erasure changed meanwhile');
        await note(memberRef, 'rights.shop_erasure.approved', id, requestId);
        return get(id);
      }
      if (row.state !== 'approved') fail(RightsErrors.RIGHTS_SHOP_ERASURE_STATE, `the shop erasure is ${row.state}`);
      if (row.approved_by === memberRef) fail(RightsErrors.RIGHTS_SHOP_ERASURE_SECOND_APPROVER, 'the confirmation must come from another staff member');
      const done = await db.updateTable('shop_erasures').set({ state: 'confirmed', confirmed_by: memberRef, confirmed_at: at }).where('id', '=', id).where('state', '=', 'approved').executeTakeFirst();
      if (Number(done.numUpdatedRows) !== 1) fail(RightsErrors.RIGHTS_SHOP_ERASURE_STATE, 'the shop erasure changed meanwhile');
      await note(memberRef, 'rights.shop_erasure.confirmed', id, requestId);
      void service.run(id, requestId).catch((error: unknown) => deps.logger?.warn({ code: (error as { code?: unknown }).code, shopErasure: id }, 'a shop erasure stopped; POST /v1/rights/shop-erasures/{id}/run resumes it'));
      return get(id);
    },

    async run(id, requestId) {
      const row = await get(id);
      if (row.state === 'completed') return row;
      if (row.state !== 'confirmed') fail(RightsErrors.RIGHTS_SHOP_ERASURE_STATE, `the shop erasure is ${row.state}: it runs once two staff members approved it`);
      let run = running.get(id);
      if (run === undefined) {
        run = erase(id, requestId).finally(() => running.delete(id));
        running.set(id, run);
      }
      return run;
    },
  };
  return service;
}
