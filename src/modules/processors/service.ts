import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { Clock } from '../../kernel/clock.ts';
import { fail } from '../../kernel/errors.ts';
import { newId } from '../../kernel/ids.ts';
import type { Database } from '../../store/schema.ts';
import type { AuditLog } from '../audit/service.ts';
import type { Inventory } from '../inventory/index.ts';
import { ProcessorErrors } from './errors.ts';
import type { KeyObject } from 'node:crypto';
import { open, seal } from '../../crypto/aead.ts';
import { webhookUrlProblem } from '../../http/webhook-delivery.ts';
import { newWebhookSecret } from '../../http/webhooks.ts';

/**
 * The registry of who receives customer data: processors acting for the shop (GDPR Art. 28) and
 * independent controllers, with the purposes and categories they get, where they are and under
 * which transfer safeguard (Art. 44-46). Every change is audited; a removed recipient is ended
 * with a date and stays listed as a past recipient (Art. 15(1)(c), 19). The privacy notice and the
 * record of processing are generated from it.
 */
export const processorInput = z
  .object({
    name: z.string().trim().min(1).max(200),
    role: z.enum(['processor', 'controller']).default('processor'),
    purposes: z.array(z.string().min(1).max(64)).min(1).max(32),
    categories: z.array(z.string().min(1).max(64)).min(1).max(32),
    country: z.string().regex(/^[A-Z]{2}$/, 'an ISO 3166-1 alpha-2 code'),
    safeguard: z.enum(['adequacy', 'scc', 'bcr']).optional(),
    dpa_signed: z.iso.date().optional(),
    retention: z.string().trim().min(1).max(200).optional(),
    /** Where it is told of erasures (GDPR Art. 19), signed as Standard Webhooks specifies; Custos makes the secret. */
    webhook_url: z
      .string()
      .max(2000)
      .refine((u) => webhookUrlProblem(u) === undefined, { message: 'an https URL (plain http only to a loopback address), no user name, no fragment' })
      .optional(),
  })
  .strict();
export type ProcessorInput = z.input<typeof processorInput>;

export type Processor = Omit<Database['processors'], 'purposes' | 'categories' | 'webhook_secret'> & { purposes: string[]; categories: string[] };

/** The AEAD associated data of a recipient's sealed signing secret: bound to its id. */
const secretAad = (id: string) => `custos:processor-webhook|${id}`;

/** A recipient's signing secret, opened (undefined: none, or it does not open under this key). */
export function openWebhookSecret(key: KeyObject, row: Pick<Database['processors'], 'id' | 'webhook_secret'>): string | undefined {
  if (row.webhook_secret === null) return undefined;
  return open(key, Buffer.from(row.webhook_secret, 'base64url'), secretAad(row.id))?.toString('utf8');
}

export interface ProcessorService {
  /** Adds a recipient; with a webhook URL, the answer carries its new signing secret, shown this once. */
  add(actor: string, input: ProcessorInput, requestId?: string): Promise<Processor & { webhook_secret?: string }>;
  /** Current recipients, or all with the past ones. */
  list(options?: { all?: boolean }): Promise<Processor[]>;
  remove(actor: string, id: string, requestId?: string): Promise<Processor>;
}

const toProcessor = ({ webhook_secret: _sealed, ...r }: Database['processors']): Processor => ({
  ...r,
  purposes: JSON.parse(r.purposes) as string[],
  categories: JSON.parse(r.categories) as string[],
});

export function createProcessorService(deps: {
  db: Kysely<Database>;
  clock: Clock;
  audit: AuditLog;
  inventory: Inventory;
  /** The `webhooks` service key: seals recipients' signing secrets. */
  webhookKey: KeyObject;
  onChange?: () => Promise<void>;
}): ProcessorService {
  const { db, clock, audit, inventory } = deps;
  const categories = new Set([...inventory.collections.values()].flatMap((c) => [...c.fields.values()].map((f) => f.category)));
  return {
    async add(actor, input, requestId) {
      const parsed = processorInput.safeParse(input);
      if (!parsed.success) fail(ProcessorErrors.PROCESSORS_INPUT_INVALID, `invalid ${parsed.error.issues[0]?.path.join('.') || 'input'}`);
      const p = parsed.data;
      const unknownPurpose = p.purposes.filter((x) => !inventory.purposes.has(x));
      if (unknownPurpose.length > 0) fail(ProcessorErrors.PROCESSORS_INPUT_INVALID, `purposes not declared in the inventory: ${unknownPurpose.join(', ')}`);
      const unknownCategory = p.categories.filter((x) => !categories.has(x));
      if (unknownCategory.length > 0) fail(ProcessorErrors.PROCESSORS_INPUT_INVALID, `categories not declared in the inventory: ${unknownCategory.join(', ')}`);
      const id = newId('prc', clock.now().getTime());
      const secret = p.webhook_url === undefined ? undefined : newWebhookSecret();
      const row: Database['processors'] = {
        id,
        name: p.name,
        role: p.role,
        purposes: JSON.stringify([...new Set(p.purposes)].sort()),
        categories: JSON.stringify([...new Set(p.categories)].sort()),
        country: p.country,
        safeguard: p.safeguard ?? null,
        dpa_signed: p.dpa_signed ?? null,
        retention: p.retention ?? null,
        added_at: clock.now().toISOString(),
        removed_at: null,
        webhook_url: p.webhook_url ?? null,
        webhook_secret: secret === undefined ? null : seal(deps.webhookKey, Buffer.from(secret, 'utf8'), secretAad(id)).toString('base64url'),
      };
      await db.transaction().execute(async (tx) => {
        await tx.insertInto('processors').values(row).execute();
        await audit.appendInTx(tx, { actor, action: 'processors.add', recordId: row.id, fields: [], outcome: 'success', requestId: requestId ?? null });
      });
      await deps.onChange?.();
      return secret === undefined ? toProcessor(row) : { ...toProcessor(row), webhook_secret: secret };
    },

    async list(options = {}) {
      let q = db.selectFrom('processors').selectAll().orderBy('added_at').orderBy('id');
      if (options.all !== true) q = q.where('removed_at', 'is', null);
      return (await q.execute()).map(toProcessor);
    },

    async remove(actor, id, requestId) {
      const at = clock.now().toISOString();
      const row = await db.transaction().execute(async (tx) => {
        const updated = await tx.updateTable('processors').set({ removed_at: at }).where('id', '=', id).where('removed_at', 'is', null).returningAll().executeTakeFirst();
        if (updated === undefined) fail(ProcessorErrors.PROCESSORS_NOT_FOUND, 'no current recipient with that id');
        await audit.appendInTx(tx, { actor, action: 'processors.remove', recordId: id, fields: [], outcome: 'success', requestId: requestId ?? null });
        return updated;
      });
      await deps.onChange?.();
      return toProcessor(row);
    },
  };
}
