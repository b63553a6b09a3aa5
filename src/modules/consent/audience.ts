import { AppError } from '../../kernel/errors.ts';
import { PolicyErrors } from '../policy/errors.ts';
import type { CallContext, RecordView, VaultService } from '../vault/service.ts';
import type { ConsentService } from './service.ts';

/**
 * The audience of a consent-based purpose: the customers a shop may use for it right now, with that
 * purpose's fields, as NDJSON lines in customer-id order. Candidates come from the ledger a keyset
 * page at a time; each one is read through the vault (the policy decision with the consent gate at
 * that moment, the audit entry committed before anything is released), so a customer whose consent
 * is not in force when their page is read releases nothing and is left out, and so is one who
 * restricted the processing of their data (GDPR Art. 18), or whose erasure was accepted. A page's reads run together, so their
 * audit entries go to the log in one group commit; the page is handed on only once every one of
 * them is committed, and the next page is read only when the consumer asks for it: memory holds
 * one page, whatever the size of the audience.
 */
export interface AudienceDeps {
  readonly vault: Pick<VaultService, 'readCustomer'>;
  readonly consent: Pick<ConsentService, 'unsubscribeUrl' | 'checkConsentPurpose' | 'candidates'>;
}

export interface AudienceRequest {
  /** Resume after this customer id (the last `customer_id` received); from the start when absent. */
  readonly cursor?: string | undefined;
  /** At most this many customers; the whole audience when absent. */
  readonly limit?: number | undefined;
}

/** Candidates read (and audited) per page: one group commit of the audit log (its batch size). */
export const AUDIENCE_PAGE = 500;

const META = new Set(['id', 'created_at', 'updated_at', 'addresses', 'customer_id']);

/**
 * Checks the caller and purpose (CONSENT_PURPOSE_UNKNOWN, _NOT_CONSENT_BASED,
 * POLICY_PURPOSE_NOT_ALLOWED) at once, then yields the audience one page of NDJSON text at a time.
 */
export function audiencePages(deps: AudienceDeps, ctx: CallContext & { purpose: string }, request: AudienceRequest, pageSize = AUDIENCE_PAGE): AsyncGenerator<string> {
  deps.consent.checkConsentPurpose(ctx.actor, ctx.purpose);
  return pages(deps, ctx, request, pageSize);
}

async function* pages(deps: AudienceDeps, ctx: CallContext & { purpose: string }, request: AudienceRequest, pageSize: number): AsyncGenerator<string> {
  let after = request.cursor ?? '';
  let left = request.limit ?? Number.POSITIVE_INFINITY;
  while (left > 0) {
    // Never more candidates than lines still wanted: no customer is read (audited) and then not sent.
    const want = Math.min(pageSize, left);
    const candidates = await deps.consent.candidates(ctx.purpose, after, want);
    if (candidates.length === 0) return;
    const views = await Promise.all(candidates.map((id) => readOrSkip(deps, ctx, id)));
    let text = '';
    for (const [i, view] of views.entries()) {
      if (view === undefined) continue;
      const id = candidates[i]!;
      const fields: Record<string, unknown> = {};
      for (const key of Object.keys(view)) if (!META.has(key)) fields[key] = view[key];
      // The purpose's fields were withheld (consent withdrawn since the candidates were listed): left out.
      if (Object.keys(fields).length === 0) continue;
      text += `${JSON.stringify({ customer_id: id, ...fields, unsubscribe_url: deps.consent.unsubscribeUrl(id, ctx.purpose) })}\n`;
      left -= 1;
    }
    after = candidates.at(-1)!;
    if (text !== '') yield text;
    if (candidates.length < want) return;
  }
}

/** The customer's record for the purpose, or undefined for one who restricted processing (GDPR Art. 18). */
async function readOrSkip(deps: AudienceDeps, ctx: CallContext, id: string): Promise<RecordView | undefined> {
  try {
    return await deps.vault.readCustomer(ctx, id);
  } catch (error) {
    // A customer who restricted processing (GDPR Art. 18), or whose erasure was accepted (Art. 17), is left out, like one without consent.
    if (error instanceof AppError && (error.code === PolicyErrors.POLICY_SUBJECT_RESTRICTED.code || error.code === PolicyErrors.POLICY_SUBJECT_ERASED.code)) return undefined;
    throw error;
  }
}
