import type { Kysely } from 'kysely';
import type { Clock } from '../../kernel/clock.ts';
import type { Logger } from '../../kernel/logger.ts';
import type { Database } from '../../store/schema.ts';
import type { AuditLog } from '../audit/service.ts';
import type { CollectPage } from './collect-page.ts';
import { CARDS_COLLECTION } from './service.ts';

/**
 * Change detection for the card-collection page (PCI DSS 4.0.1 11.6.1). What it detects, each
 * raised as the audit action `cards.collect_page_changed` (fields: the parts, then what they were
 * compared with) and an error or warning in the log:
 * - at start, a file (HTML, script, stylesheet) whose SHA-256 differs from the release manifest
 *   (`against.manifest`, outcome failure): the page is withheld (503) by this server;
 * - at start, any part — the three files, and the security headers the page is sent with (its
 *   Content-Security-Policy with frame-ancestors, HSTS, …) — that differs from what this database
 *   recorded as last served by any server (`against.last_served`, outcome success: the change is recorded as the new
 *   baseline, once, by the first server to see it);
 * - every hour while running, a file on disk that no longer matches the copy this server serves
 *   from memory (`against.served`, outcome failure, once per new state of the files).
 * It does not see what happens after the page leaves this server (a proxy rewriting it, a browser
 * extension); TLS, Subresource Integrity and the Content-Security-Policy guard that path.
 */
export const COLLECT_CHECK_INTERVAL_MS = 3_600_000;

export interface CollectMonitor {
  /** The start checks; returns the parts that changed, by what they were compared with. */
  start(): Promise<{ manifest: string[]; lastServed: string[] }>;
  /** The hourly check of the files on disk; returns the parts that differ from what is served. */
  checkDisk(): Promise<string[]>;
  close(): void;
}

export function createCollectMonitor(deps: { page: CollectPage; db: Kysely<Database>; audit: AuditLog; clock: Clock; logger: Logger; intervalMs?: number }): CollectMonitor {
  const { page, db, audit, clock, logger } = deps;
  let timer: NodeJS.Timeout | undefined;
  let reported = '';

  const raise = (parts: readonly string[], against: 'manifest' | 'last_served' | 'served', outcome: 'success' | 'failure') =>
    audit.append({ actor: 'system', action: 'cards.collect_page_changed', collection: CARDS_COLLECTION, recordId: 'collect_page', fields: [...parts, `against.${against}`], outcome });

  /** Records each part as served now; returns the parts that differ from the record (first record: none). */
  async function compareWithLastServed(): Promise<string[]> {
    const at = clock.now().toISOString();
    const changed: string[] = [];
    for (const [part, sha256] of page.parts) {
      const known = await db.selectFrom('card_collect_page').select('sha256').where('part', '=', part).executeTakeFirst();
      if (known === undefined) {
        await db.insertInto('card_collect_page').values({ part, sha256, recorded_at: at }).onConflict((oc) => oc.column('part').doNothing()).execute();
        continue;
      }
      if (known.sha256 === sha256) continue;
      // Conditional, so that of servers starting together only one records (and reports) the change.
      const done = await db.updateTable('card_collect_page').set({ sha256, recorded_at: at }).where('part', '=', part).where('sha256', '=', known.sha256).executeTakeFirst();
      if (Number(done.numUpdatedRows) > 0) changed.push(part);
    }
    return changed;
  }

  const monitor: CollectMonitor = {
    async start() {
      const manifest = [...page.altered];
      if (manifest.length > 0) {
        logger.error({ parts: manifest }, 'the card collection page differs from its release manifest: it is withheld (run `npm run docs` after an intended change)');
        await raise(manifest, 'manifest', 'failure');
      }
      const lastServed = await compareWithLastServed();
      if (lastServed.length > 0) {
        logger.warn({ parts: lastServed }, 'the card collection page changed since it was last served: review the change (audit action cards.collect_page_changed)');
        await raise(lastServed, 'last_served', 'success');
      }
      timer ??= setInterval(() => void monitor.checkDisk().catch((error: unknown) => logger.warn({ code: (error as { code?: unknown }).code }, 'card collection page check failed')), deps.intervalMs ?? COLLECT_CHECK_INTERVAL_MS);
      timer.unref();
      return { manifest, lastServed };
    },
    async checkDisk() {
      const changed = page.diskChanges();
      const key = changed.join(',');
      if (changed.length > 0 && key !== reported) {
        logger.error({ parts: changed }, 'a file of the card collection page changed on disk; this server keeps serving the copy it checked at start');
        await raise(changed, 'served', 'failure');
      }
      reported = key;
      return changed;
    },
    close() {
      if (timer !== undefined) clearInterval(timer);
      timer = undefined;
    },
  };
  return monitor;
}
