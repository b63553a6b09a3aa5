import { sourceOf, type SecurityEvent } from '../../kernel/security-events.ts';
import type { AuditContext, AuditEntry } from '../audit/service.ts';

/**
 * How the audit log feeds detection: each appended entry becomes one security event, with the
 * client address of its request (known by request id while the request runs) and whatever the
 * appender added for the rules. The address never reaches the audit log itself.
 */
export interface RequestSources {
  /** Remembers the client address of a request while it runs (the app's onRequest hook). */
  begin(requestId: string, address: string): void;
  end(requestId: string): void;
  address(requestId: string | null | undefined): string | undefined;
}

/** Requests remembered at once; beyond it the oldest are forgotten (a request aborted before its response). */
const MAX_REQUESTS = 100_000;

export function createRequestSources(): RequestSources {
  const live = new Map<string, string>();
  return {
    begin(requestId, address) {
      if (live.size >= MAX_REQUESTS) live.delete(live.keys().next().value!);
      live.set(requestId, address);
    },
    end(requestId) {
      live.delete(requestId);
    },
    address: (requestId) => (requestId === null || requestId === undefined ? undefined : live.get(requestId)),
  };
}

/** The security event of an audit entry appended at `at`. */
export function eventOfEntry(entry: AuditEntry, context: AuditContext | undefined, requests: RequestSources, at: Date): SecurityEvent {
  const source = context?.source ?? sourceOf(requests.address(entry.requestId));
  return {
    at,
    action: entry.action,
    outcome: entry.outcome,
    actor: entry.actor,
    source,
    subjectId: entry.subjectId ?? null,
    collection: entry.collection ?? null,
    recordId: entry.recordId ?? null,
    purpose: entry.purpose ?? null,
    ...(entry.fields === undefined ? {} : { fields: entry.fields }),
    requestId: entry.requestId ?? null,
    ...(context?.detail === undefined ? {} : { detail: context.detail }),
  };
}
