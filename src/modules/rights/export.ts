import type { Readable } from 'node:stream';
import type { Clock } from '../../kernel/clock.ts';
import { fail } from '../../kernel/errors.ts';
import type { Logger } from '../../kernel/logger.ts';
import type { AuditLog } from '../audit/service.ts';
import type { CardService } from '../cards/service.ts';
import type { ConsentService } from '../consent/service.ts';
import type { MailMessage } from '../identity/mail/mailer.ts';
import type { Inventory } from '../inventory/index.ts';
import { ERASING } from './restriction-column.ts';
import type { Actor, RestrictionGate } from '../policy/service.ts';
import type { Processor } from '../processors/service.ts';
import type { Controller } from '../transparency/notice.ts';
import type { VaultSubjects } from '../vault/audience.ts';
import { EXPORT_PURPOSE, type CallContext, type VaultService } from '../vault/service.ts';
import { RightsErrors } from './errors.ts';
import { exportZip, type ExportSources } from './export-document.ts';
import type { ExportLink, ExportLinks } from './export-links.ts';
import { exportReadyMail } from './mails.ts';
import type { RequestView, RightsContext, RightsService } from './service.ts';

/**
 * Answers access and portability requests (GDPR Art. 15, 20; CCPA "right to know"). Completing
 * such a request issues its download link in the same transaction as the completion; the link is
 * mailed to the customer (the mail holds no personal data beyond the address it goes to) unless
 * the request came through an integration, whose answer goes to the shop's staff queue (Shopify
 * hands it to the store owner). The file itself is made when the link is used, streamed from the
 * database (export-document.ts), so no copy of the customer's data is ever kept at rest outside
 * the vault. Every download is audited, and so is every refused one.
 */
export const EXPORT_KINDS: readonly string[] = ['access', 'portability'];

/** The rights process reads as this actor: the export (purpose `rights`) and the consent ledger (which it reads for `account`). */
export const RIGHTS_ACTOR: Actor = Object.freeze({ ref: 'system:rights', kind: 'system' as const, purposes: Object.freeze(['rights', 'account']) });

/** What a view of a request shows of its link: the link itself only to those who hand it over. */
export interface ExportView {
  url: string | null;
  token: string | null;
  expires_at: string;
  downloaded_at: string | null;
}

export interface ExportService {
  /** Completes an access or portability request with its download link; mails the customer. */
  complete(ctx: RightsContext, requestId: string): Promise<RequestView>;
  /** The request's export as `viewer` may see it (null: none). Staff and API keys see no link the customer asked for. */
  viewOf(request: RequestView, viewer: 'customer' | 'shop'): Promise<ExportView | null>;
  /** The customer's links still usable (GET /v1/me). */
  usable(customerId: string): Promise<ExportLink[]>;
  /** Spends a link and streams its export (audited); the errors of export-links.ts otherwise. */
  download(token: string, requestId: string): Promise<{ filename: string; stream: Readable }>;
}

export interface ExportDeps {
  readonly clock: Clock;
  readonly audit: Pick<AuditLog, 'append' | 'forSubject' | 'proofs'>;
  readonly rights: RightsService;
  readonly links: ExportLinks;
  readonly vault: Pick<VaultService, 'exportPage' | 'customerEmail'>;
  readonly subjects: VaultSubjects;
  /** The policy's restriction gate: an export of a customer whose erasure was accepted is refused. */
  readonly restriction: Pick<RestrictionGate, 'facts'>;
  readonly cards: Pick<CardService, 'forCustomer'>;
  readonly consent: Pick<ConsentService, 'state'>;
  readonly recipients: () => Promise<Processor[]>;
  readonly inventory: Inventory;
  readonly controller: Controller;
  readonly shopName: string;
  readonly mail: (message: MailMessage) => Promise<unknown>;
  readonly logger?: Logger;
}

/**
 * Where an export reads a customer's data from, each read the owning capability's own (audited
 * there), as the rights process (`system:rights`, purpose `rights`). `proofs: false` leaves the
 * access log's inclusion proofs out (the benchmark measures what they cost; downloads carry them).
 */
export function exportSources(
  deps: Pick<ExportDeps, 'audit' | 'vault' | 'cards' | 'consent' | 'recipients' | 'inventory' | 'controller'>,
  customerId: string,
  requestId: string,
  options: { proofs: boolean } = { proofs: true },
): ExportSources {
  const ctx: CallContext = { actor: RIGHTS_ACTOR, purpose: EXPORT_PURPOSE, requestId };
  return {
    inventory: deps.inventory,
    controller: deps.controller,
    page: (collection, after, limit) => deps.vault.exportPage(ctx, customerId, collection, after, limit),
    cards: () => deps.cards.forCustomer({ ...ctx, clientAddress: 'internal' }, customerId),
    consents: () => deps.consent.state({ actor: RIGHTS_ACTOR, requestId }, customerId),
    accessLog: (before, limit) => deps.audit.forSubject(customerId, before === undefined ? { limit } : { limit, before }),
    proofs: options.proofs ? (ids) => deps.audit.proofs(ids) : async () => ({ head: null, proofs: new Map() }),
    recipients: deps.recipients,
  };
}

export function createExportService(deps: ExportDeps): ExportService {
  const { rights, links, audit } = deps;
  const entry = (action: string, link: { requestId: string; customerId: string } | undefined, requestId: string, outcome: 'success' | 'denied') => ({
    actor: 'link:export',
    action,
    subjectId: link?.customerId ?? null,
    collection: 'rights_requests',
    recordId: link?.requestId ?? null,
    purpose: EXPORT_PURPOSE,
    outcome,
    requestId,
  });

  async function mailCustomer(request: RequestView, requestId: string): Promise<void> {
    if (request.channel === 'integration') return;
    const link = await links.forRequest(request.id);
    const ctx: CallContext = { actor: RIGHTS_ACTOR, purpose: EXPORT_PURPOSE, requestId };
    try {
      const to = await deps.vault.customerEmail(ctx, request.customer_id);
      if (to === undefined || link === undefined) return;
      await deps.mail(exportReadyMail({ to, shopName: deps.shopName, link: link.url, expiresAt: link.expires_at }));
    } catch (error) {
      // The link stays in the customer's views (GET /v1/me); the mail is not what completes the request.
      deps.logger?.warn({ code: (error as { code?: unknown }).code, request: request.id }, 'the export-ready mail could not be sent');
    }
  }

  return {
    async complete(ctx, requestId) {
      const request = await rights.get(requestId);
      const view = await rights.transition(ctx, requestId, {
        to: 'completed',
        within: (tx) => links.issue(tx, { requestId, customerId: request.customer_id }),
      });
      await mailCustomer(view, ctx.requestId);
      return view;
    },

    async viewOf(request, viewer) {
      if (!EXPORT_KINDS.includes(request.kind)) return null;
      const link = await links.forRequest(request.id);
      if (link === undefined) return null;
      const usable = link.downloaded_at === null && Date.parse(link.expires_at) > deps.clock.now().getTime();
      const shown = usable && (viewer === 'customer' || request.channel !== 'customer');
      return { url: shown ? link.url : null, token: shown ? link.token : null, expires_at: link.expires_at, downloaded_at: link.downloaded_at };
    },

    usable: (customerId) => links.usable(customerId),

    async download(token, requestId) {
      let claimed: Awaited<ReturnType<ExportLinks['claim']>>;
      try {
        claimed = await links.claim(token, (why, link) => audit.append(entry(`rights.export.link_${why}`, link, requestId, 'denied')));
      } catch (error) {
        if ((error as { code?: unknown }).code === RightsErrors.RIGHTS_EXPORT_LINK_INVALID.code) await audit.append(entry('rights.export.link_invalid', undefined, requestId, 'denied'));
        throw error;
      }
      // An erasure accepted meanwhile: nothing of the customer is released, the export included.
      if (!(await deps.subjects.exists(claimed.customerId)) || (await deps.restriction.facts(claimed.customerId)).restriction === ERASING)
        fail(RightsErrors.RIGHTS_EXPORT_UNAVAILABLE, 'the customer this export was made for no longer exists, or is being erased');
      const request = await rights.get(claimed.requestId);
      // Durable before any byte leaves (fail closed), like every read.
      await audit.append({ ...entry('rights.export.downloaded', claimed, requestId, 'success'), fields: ['records', 'consents', 'access_log', 'purposes', 'recipients', 'retention', 'sources'] });
      const customerId = claimed.customerId;
      const generatedAt = deps.clock.now();
      const stream = exportZip(exportSources(deps, customerId, requestId), { requestId: request.id, kind: request.kind, customerId, generatedAt });
      return { filename: `data-export-${generatedAt.toISOString().slice(0, 10)}-${request.id}.zip`, stream };
    },
  };
}
