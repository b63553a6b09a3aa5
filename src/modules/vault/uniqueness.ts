import type { Kysely } from 'kysely';
import { digestsOf, type BlindIndexKeys, type BlindIndexSet } from '../../crypto/blind-index.ts';
import type { KeyStore } from '../../crypto/key-store.ts';
import { fail } from '../../kernel/errors.ts';
import type { Database } from '../../store/schema.ts';
import type { AuditLog } from '../audit/service.ts';
import { normaliseEmail, type Inventory } from '../inventory/index.ts';
import type { PolicyService } from '../policy/service.ts';
import { parseStored } from './codec.ts';
import { VaultErrors } from './errors.ts';
import type { CallContext, VaultService } from './service.ts';

/**
 * One person, one record. The database enforces both rules inside the write itself, so two
 * concurrent writes cannot both pass (migration 0006): a unique index on the email blind index of
 * customers, and one over (customer, order `number`). A violation becomes a 409 with a stable code.
 * The existing customer's id is told only to a caller that could have found it by a lookup by
 * email (a purpose it may state that sees `email` for that customer), and that disclosure is
 * audited like a lookup (`vault.lookup`, no fields) in the customer's access log.
 */
type Deps = {
  db: Kysely<Database>;
  keys: KeyStore;
  blindIndex: BlindIndexKeys;
  inventory: Inventory;
  policy: PolicyService;
  audit: AuditLog;
};

function violated(error: unknown, index: string, sqliteMessage: string): boolean {
  const e = error as { code?: unknown; constraint?: unknown; message?: unknown };
  if (e.code === '23505') return e.constraint === index;
  return e.code === 'SQLITE_CONSTRAINT_UNIQUE' && typeof e.message === 'string' && e.message.endsWith(sqliteMessage);
}

const emailTaken = (error: unknown) => violated(error, 'blind_indexes_customer_email', ': blind_indexes.digest');
const numberTaken = (error: unknown) => violated(error, 'records_order_number', "index 'records_order_number'");
/** A write refused by one of the two unique indexes this file answers for. */
export const isUniqueViolation = (error: unknown): boolean => emailTaken(error) || numberTaken(error);

/** The customer record holding this email (the oldest, should older duplicates remain), found through the blind index. */
async function ownerOf(deps: Deps, email: string, except?: string): Promise<string | undefined> {
  const n = normaliseEmail(email);
  return n === undefined ? undefined : ownerByValue(deps, 'email', n, except);
}

/** The customer record whose blind index of `field` holds the normalised value (the oldest), under any key version in force. */
async function ownerByValue(deps: Deps, field: string, normalised: string, except?: string): Promise<string | undefined> {
  const find = async (set: BlindIndexSet) => {
    let q = deps.db
      .selectFrom('blind_indexes')
      .select('record_id')
      .where('collection', '=', 'customers')
      .where('field', '=', field)
      .where('digest', 'in', digestsOf(set, 'customers', field, normalised));
    if (except !== undefined) q = q.where('record_id', '<>', except);
    return (await q.orderBy('record_id').limit(1).executeTakeFirst())?.record_id;
  };
  return deps.blindIndex.lookup(find);
}

/** The purpose through which this caller may look the customer up by email, if any. */
async function lookupPurpose(deps: Deps, ctx: CallContext, subjectId: string): Promise<string | undefined> {
  const customers = deps.inventory.collections.get('customers')!;
  const email = customers.fields.get('email');
  if (email === undefined || email.protection !== 'searchable') return undefined;
  const candidates = ctx.purpose !== undefined ? [ctx.purpose] : ctx.actor.purposes;
  for (const purpose of candidates) {
    if (!ctx.actor.purposes.includes(purpose) || !email.purposes.has(purpose)) continue;
    try {
      await deps.policy.authorize(ctx.actor, purpose, subjectId);
      if ((await deps.policy.decide(ctx.actor, purpose, subjectId, customers)).has('email')) return purpose;
    } catch {
      // A guard refusing this subject: the id is not told.
    }
  }
  return undefined;
}

async function refuseEmail(deps: Deps, ctx: CallContext, email: unknown, self?: string): Promise<never> {
  const existing = typeof email === 'string' ? await ownerOf(deps, email, self) : undefined;
  const purpose = existing === undefined ? undefined : await lookupPurpose(deps, ctx, existing);
  if (existing === undefined || purpose === undefined) fail(VaultErrors.VAULT_EMAIL_TAKEN, 'another customer record already holds this email');
  await deps.audit.append({
    actor: ctx.actor.ref,
    action: 'vault.lookup',
    subjectId: existing,
    collection: 'customers',
    recordId: existing,
    fields: [],
    purpose,
    outcome: 'success',
    requestId: ctx.requestId,
  });
  fail(VaultErrors.VAULT_EMAIL_TAKEN, 'another customer record already holds this email', { existing_id: existing });
}

/**
 * The service with the uniqueness rules turned into answers, and the two reads identity needs to
 * link an account to the shop's record.
 */
export function withUniqueness(deps: Deps, service: Omit<VaultService, 'customerIdByEmail' | 'customerIdBy'>): VaultService {
  return {
    ...service,
    async create(ctx, collection, parentId, values) {
      try {
        return await service.create(ctx, collection, parentId, values);
      } catch (error) {
        if (collection === 'customers' && emailTaken(error)) return refuseEmail(deps, ctx, values.email);
        if (collection === 'orders' && numberTaken(error)) fail(VaultErrors.VAULT_ORDER_NUMBER_TAKEN, 'this customer already has an order with this number');
        throw error;
      }
    },
    async updateCustomer(ctx, id, values) {
      try {
        return await service.updateCustomer(ctx, id, values);
      } catch (error) {
        if (emailTaken(error)) return refuseEmail(deps, ctx, values.email, id);
        throw error;
      }
    },
    customerIdByEmail: (email) => ownerOf(deps, email),
    async customerIdBy(field, value) {
      const def = deps.inventory.collections.get('customers')!.fields.get(field);
      if (def === undefined || def.protection !== 'searchable' || def.type !== 'string') return undefined;
      return ownerByValue(deps, field, value.normalize('NFC'));
    },
  };
}
