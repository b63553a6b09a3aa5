import { createHmac, createSecretKey, hkdfSync, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { Kysely, Transaction } from 'kysely';
import type { Clock } from '../../kernel/clock.ts';
import { fail } from '../../kernel/errors.ts';
import { newId } from '../../kernel/ids.ts';
import type { Database } from '../../store/schema.ts';
import { RightsErrors } from './errors.ts';

/**
 * Download links of access and portability exports: signed, expiring, single use. A token is
 * `<link id>.<expiry, seconds>.<HMAC-SHA256>` under the export-link key, so a forged or altered
 * token is refused before the database is asked; the link's row makes it single use (the first
 * download sets `downloaded_at` in one conditional update) and keeps its end. Nothing secret is
 * stored: the token is recomputed from the row whenever a view shows it.
 *
 * The export-link key is derived with HKDF-SHA256 from each version of the `receipts` service
 * key, the rights capability's own key (its Ed25519 seed signs erasure receipts; the HKDF label
 * keeps the two uses apart). A link made before a rotation of that key still verifies.
 */
export interface ExportLink {
  readonly id: string;
  readonly request_id: string;
  readonly token: string;
  /** The page that downloads the file (the token in its fragment, never sent to a server by a browser). */
  readonly url: string;
  readonly expires_at: string;
  readonly downloaded_at: string | null;
}

export interface ExportLinks {
  /** A new link for a request, inside the caller's transaction. */
  issue(tx: Transaction<Database>, input: { requestId: string; customerId: string }): Promise<void>;
  /** The request's link, or undefined. */
  forRequest(requestId: string): Promise<ExportLink | undefined>;
  /** The customer's links still usable (not used, not expired), newest first. */
  usable(customerId: string): Promise<ExportLink[]>;
  /** Checks a token and spends it: RIGHTS_EXPORT_LINK_INVALID, _EXPIRED or _USED otherwise (`refused` is told which first). */
  claim(token: string, refused: (why: 'expired' | 'used', link: { requestId: string; customerId: string }) => Promise<void>): Promise<{ id: string; requestId: string; customerId: string }>;
}

const LABEL = 'custos/rights-export-link/v1';
const TOKEN = /^(rex_[0-9A-HJKMNP-TV-Z]{26})\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/;

/** The export-link keys, current first, from the versions of the `receipts` service key. */
export function exportLinkKeys(receipts: readonly { key: KeyObject }[]): KeyObject[] {
  return receipts.map((v) => createSecretKey(Buffer.from(hkdfSync('sha256', v.key.export(), Buffer.alloc(0), LABEL, 32))));
}

const mac = (key: KeyObject, id: string, exp: number) => createHmac('sha256', key).update(`${LABEL}\u0000${id}\u0000${exp}`).digest('base64url');

export function createExportLinks(deps: { db: Kysely<Database>; clock: Clock; keys: readonly KeyObject[]; ttlHours: number; baseUrl: string }): ExportLinks {
  const { db, clock } = deps;
  const current = deps.keys[0];
  if (current === undefined) throw new Error('no export-link key');
  const toLink = (row: Database['rights_exports']): ExportLink => {
    const exp = Math.floor(Date.parse(row.expires_at) / 1000);
    const token = `${row.id}.${exp}.${mac(current, row.id, exp)}`;
    return { id: row.id, request_id: row.request_id, token, url: `${deps.baseUrl}/account/export#token=${token}`, expires_at: row.expires_at, downloaded_at: row.downloaded_at };
  };

  return {
    async issue(tx, input) {
      const now = clock.now();
      // Whole seconds, so that the expiry in the token and in the row are the same instant.
      const expires = new Date(Math.floor(now.getTime() / 1000) * 1000 + deps.ttlHours * 3_600_000);
      await tx
        .insertInto('rights_exports')
        .values({ id: newId('rex', now.getTime()), request_id: input.requestId, customer_id: input.customerId, created_at: now.toISOString(), expires_at: expires.toISOString(), downloaded_at: null })
        .execute();
    },

    async forRequest(requestId) {
      const row = await db.selectFrom('rights_exports').selectAll().where('request_id', '=', requestId).orderBy('id', 'desc').limit(1).executeTakeFirst();
      return row === undefined ? undefined : toLink(row);
    },

    async usable(customerId) {
      const rows = await db
        .selectFrom('rights_exports')
        .selectAll()
        .where('customer_id', '=', customerId)
        .where('expires_at', '>', clock.now().toISOString())
        .where('downloaded_at', 'is', null)
        .orderBy('id', 'desc')
        .execute();
      return rows.map(toLink);
    },

    async claim(token, refused) {
      const m = TOKEN.exec(token);
      const invalid = (): never => fail(RightsErrors.RIGHTS_EXPORT_LINK_INVALID, 'the download link is not one Custos made');
      if (m === null) return invalid();
      const [, id, expText, sig] = m as unknown as [string, string, string, string];
      const exp = Number(expText);
      const given = Buffer.from(sig);
      if (!deps.keys.some((key) => timingSafeEqual(Buffer.from(mac(key, id, exp)), given))) return invalid();
      const row = await db.selectFrom('rights_exports').selectAll().where('id', '=', id).executeTakeFirst();
      // A signed link whose row is gone (purged with its request) or whose end was changed is no link.
      if (row === undefined || Math.floor(Date.parse(row.expires_at) / 1000) !== exp) return invalid();
      const link = { requestId: row.request_id, customerId: row.customer_id };
      const now = clock.now();
      if (now.getTime() >= exp * 1000) {
        await refused('expired', link);
        fail(RightsErrors.RIGHTS_EXPORT_LINK_EXPIRED, 'the download link has expired');
      }
      const spent = await db.updateTable('rights_exports').set({ downloaded_at: now.toISOString() }).where('id', '=', id).where('downloaded_at', 'is', null).executeTakeFirst();
      if (Number(spent.numUpdatedRows) !== 1) {
        await refused('used', link);
        fail(RightsErrors.RIGHTS_EXPORT_LINK_USED, 'the download link was used already');
      }
      return { id, ...link };
    },
  };
}
