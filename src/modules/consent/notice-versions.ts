import { createHash } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../kernel/clock.ts';
import type { Inventory } from '../inventory/index.ts';
import type { Database } from '../../store/schema.ts';

/**
 * Notice versions: integers Custos bumps when the generated notice changes. Each consent-based
 * purpose records the version it last changed in (its description, the fields it releases, its
 * independent-controller recipients); a consent counts while the notice version it was given
 * under is at least that (GDPR Art. 7(1), 13(3): consent to what the customer was actually told).
 */
export interface NoticeContent {
  /** Everything the notice says, in a stable shape. */
  readonly notice: unknown;
  /** Per consent-based purpose, what a consent to it was about. */
  readonly purposes: ReadonlyMap<string, unknown>;
}

export interface NoticeVersions {
  /** Publishes a new version when the content changed; returns the current version. */
  sync(content: NoticeContent): Promise<number>;
  current(): number;
  /** Reads the versions again (another process may have published one). */
  refresh(): Promise<void>;
  /** The version the purpose last changed in (the inventory's `changed_in` when later). */
  changedIn(purpose: string): number;
  publishedAt(version: number): Promise<string | undefined>;
}

const digest = (value: unknown) => createHash('sha256').update(JSON.stringify(value)).digest('hex');

/** What a consent to each consent-based purpose covers, from the inventory alone. */
export function purposeContent(inventory: Inventory, controllersOf: (purpose: string) => readonly string[] = () => []): Map<string, unknown> {
  const out = new Map<string, unknown>();
  for (const p of inventory.purposes.values()) {
    if (!p.consentBased) continue;
    const fields: string[] = [];
    for (const c of inventory.collections.values())
      for (const f of c.fields.values()) {
        const use = f.purposes.get(p.name);
        if (use !== undefined) fields.push(`${c.name}.${f.name}:${use.access}`);
      }
    out.set(p.name, { descriptions: p.descriptions, saleOrSharing: p.saleOrSharing, fields: fields.sort(), controllers: [...controllersOf(p.name)].sort() });
  }
  return out;
}

export function createNoticeVersions(deps: { db: Kysely<Database>; clock: Clock; inventory: Inventory }): NoticeVersions {
  const { db, clock, inventory } = deps;
  let current = 0;
  const changed = new Map<string, number>();

  async function load(): Promise<void> {
    const head = await db.selectFrom('consent_notices').select('version').orderBy('version', 'desc').limit(1).executeTakeFirst();
    current = head?.version ?? 0;
    changed.clear();
    for (const r of await db.selectFrom('consent_purpose_versions').selectAll().execute()) changed.set(r.purpose, r.changed_in);
  }

  return {
    async sync(content) {
      const noticeDigest = digest(content.notice);
      for (let attempt = 0; ; attempt++) {
        try {
          await db.transaction().execute(async (tx) => {
            const head = await tx.selectFrom('consent_notices').selectAll().orderBy('version', 'desc').limit(1).executeTakeFirst();
            const stored = new Map((await tx.selectFrom('consent_purpose_versions').selectAll().execute()).map((r) => [r.purpose, r]));
            if (head?.digest === noticeDigest && [...content.purposes.keys()].every((p) => stored.has(p))) return;
            const version = (head?.version ?? 0) + 1;
            await tx.insertInto('consent_notices').values({ version, digest: noticeDigest, published_at: clock.now().toISOString() }).execute();
            for (const [purpose, value] of content.purposes) {
              const d = digest(value);
              const prior = stored.get(purpose);
              if (prior === undefined) await tx.insertInto('consent_purpose_versions').values({ purpose, digest: d, changed_in: version }).execute();
              else if (prior.digest !== d) await tx.updateTable('consent_purpose_versions').set({ digest: d, changed_in: version }).where('purpose', '=', purpose).execute();
            }
          });
          break;
        } catch (error) {
          // Another process published the same version first: read what it wrote.
          if (attempt >= 2) throw error;
        }
      }
      await load();
      return current;
    },
    current: () => current,
    refresh: load,
    changedIn(purpose) {
      return Math.max(changed.get(purpose) ?? 1, inventory.purposes.get(purpose)?.changedIn ?? 1);
    },
    async publishedAt(version) {
      return (await db.selectFrom('consent_notices').select('published_at').where('version', '=', version).executeTakeFirst())?.published_at;
    },
  };
}
