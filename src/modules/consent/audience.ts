import type { Kysely } from 'kysely';
import { AppError } from '../../kernel/errors.ts';
import type { Database } from '../../store/schema.ts';
import { PolicyErrors } from '../policy/errors.ts';
import type { CallContext, RecordView, VaultService } from '../vault/service.ts';
import type { ConsentService } from './service.ts';

/**
 * The audience of a consent-based purpose: the customers a shop may use for it right now, with that
 * purpose's fields, a page at a time. Candidates come from the ledger; each one is read through the
 * vault (policy decision with the consent gate, audit entry committed before release), so a
 * customer whose consent is not in force at that moment releases nothing and is left out, and so
 * is one who restricted the processing of their data (GDPR Art. 18), or whose erasure was accepted.
 */
export interface AudiencePage {
  readonly rows: Record<string, unknown>[];
  readonly nextCursor: string | null;
}

const META = new Set(['id', 'created_at', 'updated_at', 'addresses', 'customer_id']);

export async function audiencePage(
  deps: { db: Kysely<Database>; vault: Pick<VaultService, 'readCustomer'>; consent: Pick<ConsentService, 'unsubscribeUrl' | 'checkConsentPurpose' | 'gate'> },
  ctx: CallContext & { purpose: string },
  page: { limit: number; cursor?: string | undefined },
): Promise<AudiencePage> {
  deps.consent.checkConsentPurpose(ctx.actor, ctx.purpose);
  let q = deps.db.selectFrom('consent_ledger').select('subject_id').distinct().where('purpose', '=', ctx.purpose).where('status', '=', 'granted');
  if (page.cursor !== undefined) q = q.where('subject_id', '>', page.cursor);
  const candidates = (await q.orderBy('subject_id').limit(page.limit + 1).execute()).map((r) => r.subject_id);
  const more = candidates.length > page.limit;
  const slice = more ? candidates.slice(0, page.limit) : candidates;
  const rows: Record<string, unknown>[] = [];
  for (const subjectId of slice) {
    // Those whose consent is not in force are not read at all (no entry in their access log).
    if (!(await deps.consent.gate.permits(subjectId, ctx.purpose))) continue;
    const view: RecordView | undefined = await deps.vault.readCustomer(ctx, subjectId).catch((error: unknown) => {
      // A customer who restricted processing (GDPR Art. 18), or whose erasure was accepted (Art. 17), is left out, like one without consent.
      if (error instanceof AppError && (error.code === PolicyErrors.POLICY_SUBJECT_RESTRICTED.code || error.code === PolicyErrors.POLICY_SUBJECT_ERASED.code)) return undefined;
      throw error;
    });
    if (view === undefined) continue;
    const fields = Object.fromEntries(Object.entries(view).filter(([k]) => !META.has(k)));
    if (Object.keys(fields).length === 0) continue;
    rows.push({ customer_id: subjectId, ...fields, unsubscribe_url: deps.consent.unsubscribeUrl(subjectId, ctx.purpose) });
  }
  return { rows, nextCursor: more ? (slice.at(-1) ?? null) : null };
}
