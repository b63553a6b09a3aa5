import type { Kysely } from 'kysely';
import type { Clock } from '../../kernel/clock.ts';
import { fail } from '../../kernel/errors.ts';
import { sourceOf } from '../../kernel/security-events.ts';
import type { Dialect } from '../../store/database.ts';
import type { Database } from '../../store/schema.ts';
import { DetectionErrors } from './errors.ts';
import { changeShared } from './state.ts';

/**
 * Sources refused for a while (the `block_source` response). The table is the truth and is pruned
 * once a block has ended; every server keeps the live blocks in memory, so the check on each
 * request is a map lookup (none at all while nothing is blocked), and reloads them when the
 * generation of detection_state moves (state.ts): at once on this process's own changes and on a
 * PostgreSQL notification, otherwise at the next look (every two seconds).
 */
export interface BlockedSource {
  readonly source: string;
  readonly until: string;
  readonly alert_id: string | null;
}

export interface SourceBlocks {
  /** Refuses (DETECTION_SOURCE_BLOCKED) a client address whose source is blocked. */
  check(address: string): void;
  block(source: string, until: Date, alertId: string | null): Promise<void>;
  /** Whether a block was lifted. */
  unblock(source: string): Promise<boolean>;
  list(): Promise<BlockedSource[]>;
  reload(): Promise<void>;
  prune(): Promise<number>;
}

export function createSourceBlocks(deps: { db: Kysely<Database>; dialect: Dialect; clock: Clock }): SourceBlocks {
  const { db, dialect, clock } = deps;
  let live = new Map<string, number>();

  async function reload(): Promise<void> {
    const rows = await db.selectFrom('detection_blocks').select(['source', 'until']).where('until', '>', clock.now().toISOString()).execute();
    live = new Map(rows.map((r) => [r.source, Date.parse(r.until)]));
  }

  return {
    check(address) {
      if (live.size === 0) return;
      const source = sourceOf(address);
      const until = source === null ? undefined : live.get(source);
      if (until === undefined) return;
      const now = clock.now().getTime();
      if (until <= now) return;
      fail(DetectionErrors.DETECTION_SOURCE_BLOCKED, 'requests from this address are refused for a while', { retry_after_seconds: Math.ceil((until - now) / 1000) });
    },

    async block(source, until, alertId) {
      const row = { source, until: until.toISOString(), alert_id: alertId, created_at: clock.now().toISOString() };
      await changeShared(db, dialect, (tx) =>
        tx
          .insertInto('detection_blocks')
          .values(row)
          .onConflict((oc) => oc.column('source').doUpdateSet({ until: row.until, alert_id: row.alert_id, created_at: row.created_at }))
          .execute(),
      );
      await reload();
    },

    async unblock(source) {
      const result = await changeShared(db, dialect, (tx) => tx.deleteFrom('detection_blocks').where('source', '=', source).executeTakeFirst());
      await reload();
      return Number(result.numDeletedRows) > 0;
    },

    async list() {
      return db.selectFrom('detection_blocks').select(['source', 'until', 'alert_id']).where('until', '>', clock.now().toISOString()).orderBy('until', 'desc').execute();
    },

    reload,

    async prune() {
      const result = await db.deleteFrom('detection_blocks').where('until', '<=', clock.now().toISOString()).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
