import { createHmac, randomBytes, timingSafeEqual, type KeyObject } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../kernel/clock.ts';
import { AppError, fail } from '../../kernel/errors.ts';
import { isId, newId } from '../../kernel/ids.ts';
import { Secret } from '../../kernel/secret.ts';
import type { Database } from '../../store/schema.ts';
import type { AuditLog } from '../audit/service.ts';
import type { TokenFormat } from './card-rules.ts';
import { CardErrors } from './errors.ts';
import { cardAuditEntry, cardOrigin, PAYMENTS_PURPOSE, type CardCallContext, type CardService, type CardView, type TokeniseInput } from './service.ts';

/**
 * Card sessions: the shop's backend mints a publishable key for one checkout (`POST
 * /v1/cards/sessions`, an API key stating `payments`), hands it to the checkout page, and the
 * card fields Custos serves (/cards/collect) spend it on one tokenisation (`POST
 * /v1/cards/collect`). So the card number goes from the customer's browser to Custos and the shop
 * only ever sees the token (PCI DSS 4.0.1: the shop's pages hold no account data).
 *
 * A key is `cpk_<session id body>_<secret>`, shown once; only the HMAC-SHA256 of its secret under
 * the api-key-hash key is stored. It lives 15 minutes, is bound to one storefront origin, to the
 * customer and token format the backend chose, serves one tokenisation (spent atomically: of two
 * uses at once one wins) and nothing else — every API-key route refuses it.
 */
export const CARD_SESSION_TTL_MS = 15 * 60_000;
/** Spent and expired sessions are kept this long for `GET /v1/cards/sessions/{id}`, then swept. */
export const CARD_SESSION_KEEP_MS = 24 * 3_600_000;
export const CARD_SESSION_PREFIX = 'cks';
const KEY = /^cpk_([0-9A-HJKMNP-TV-Z]{26})_([A-Za-z0-9_-]{43})$/;
const DUMMY = Buffer.alloc(32);

export type CardSessionStatus = 'open' | 'used' | 'expired';

export interface CardSessionView {
  id: string;
  origin: string;
  customer_id: string | null;
  token_format: TokenFormat;
  created_at: string;
  expires_at: string;
  status: CardSessionStatus;
  /** The token the session produced, once used. */
  token: string | null;
}

export interface CollectContext {
  readonly requestId: string;
  readonly clientAddress: string;
  /** The request's Origin when it is a storefront origin (a cross-origin call); undefined from Custos's own page. */
  readonly storefrontOrigin: string | undefined;
}

export interface CardSessions {
  create(ctx: CardCallContext, input: { origin?: string | undefined; customer_id?: string | undefined; token_format?: TokenFormat | undefined }): Promise<{ key: Secret<string>; session: CardSessionView }>;
  get(ctx: CardCallContext, id: string): Promise<CardSessionView>;
  /**
   * Tokenises one card with a publishable key, spending it. A refusal of the card (Luhn, expiry, …)
   * gives the key back, so the customer can correct a typo; anything that stored the card keeps it
   * spent.
   */
  collect(ctx: CollectContext, presented: string, card: Omit<TokeniseInput, 'customer_id' | 'token_format'>): Promise<CardView & { origin: string; session: string }>;
  /** Deletes sessions that expired more than a day ago; returns how many. */
  sweep(): Promise<number>;
}

export function createCardSessions(deps: {
  db: Kysely<Database>;
  cards: CardService;
  audit: AuditLog;
  clock: Clock;
  /** The api-key-hash key versions, current first (older ones still verify keys minted before a rotation). */
  hashKeys: readonly KeyObject[];
  /** CUSTOS_STOREFRONT_ORIGINS. */
  storefrontOrigins: readonly string[];
}): CardSessions {
  const { db, cards, audit, clock } = deps;
  const digest = (key: KeyObject, secret: string) => createHmac('sha256', key).update(secret, 'utf8').digest();

  const status = (r: Database['card_sessions']): CardSessionStatus => (r.used_at !== null ? 'used' : r.expires_at <= clock.now().toISOString() ? 'expired' : 'open');
  const view = (r: Database['card_sessions']): CardSessionView => ({
    id: r.id,
    origin: r.origin,
    customer_id: r.customer_id,
    token_format: r.token_format,
    created_at: r.created_at,
    expires_at: r.expires_at,
    status: status(r),
    token: r.card_token,
  });

  function originFor(requested: string | undefined): string {
    if (requested === undefined) {
      if (deps.storefrontOrigins.length === 1) return deps.storefrontOrigins[0]!;
      fail(CardErrors.CARDS_STOREFRONT_ORIGIN_NOT_ALLOWED, deps.storefrontOrigins.length === 0 ? 'CUSTOS_STOREFRONT_ORIGINS is not set' : 'name the storefront origin: several are configured');
    }
    if (!deps.storefrontOrigins.includes(requested.replace(/\/$/, ''))) fail(CardErrors.CARDS_STOREFRONT_ORIGIN_NOT_ALLOWED, 'origin is not on CUSTOS_STOREFRONT_ORIGINS');
    return requested.replace(/\/$/, '');
  }

  /** The session a presented key names, if its secret matches; undefined for anything else. */
  async function sessionOf(presented: string): Promise<Database['card_sessions'] | undefined> {
    const m = KEY.exec(presented);
    if (m === null) return undefined;
    const row = await db.selectFrom('card_sessions').selectAll().where('id', '=', `${CARD_SESSION_PREFIX}_${m[1]!}`).executeTakeFirst();
    const stored = row === undefined ? DUMMY : Buffer.from(row.secret_hash, 'base64url');
    const against = stored.length === 32 ? stored : DUMMY;
    // Every version is tried, so both paths (known id or not) do the same work.
    const matches = deps.hashKeys.map((k) => timingSafeEqual(digest(k, m[2]!), against)).includes(true);
    return row !== undefined && matches ? row : undefined;
  }

  return {
    async create(ctx, input) {
      const origin = originFor(input.origin);
      await cards.authorize(ctx, 'cards.session_create', input.customer_id, 'write');
      const now = clock.now();
      const id = newId(CARD_SESSION_PREFIX, now.getTime());
      const secret = randomBytes(32).toString('base64url');
      const row: Database['card_sessions'] = {
        id,
        secret_hash: digest(deps.hashKeys[0]!, secret).toString('base64url'),
        created_by: ctx.actor.ref,
        origin,
        customer_id: input.customer_id ?? null,
        token_format: input.token_format ?? 'opaque',
        created_at: now.toISOString(),
        expires_at: new Date(now.getTime() + CARD_SESSION_TTL_MS).toISOString(),
        used_at: null,
        card_token: null,
      };
      await db.transaction().execute(async (tx) => {
        await tx.insertInto('card_sessions').values(row).execute();
        await audit.appendInTx(tx, cardAuditEntry(ctx, 'cards.session_create', row.customer_id, id, [], 'success'), cardOrigin(ctx));
      });
      return { key: new Secret(`cpk_${id.slice(CARD_SESSION_PREFIX.length + 1)}_${secret}`), session: view(row) };
    },

    async get(ctx, id) {
      if (!isId(CARD_SESSION_PREFIX, id)) fail(CardErrors.CARDS_SESSION_UNKNOWN, 'no card session has this id');
      const row = await db.selectFrom('card_sessions').selectAll().where('id', '=', id).executeTakeFirst();
      if (row === undefined) fail(CardErrors.CARDS_SESSION_UNKNOWN, 'no card session has this id');
      await cards.authorize(ctx, 'cards.session_read', row.customer_id ?? undefined, 'read');
      return view(row);
    },

    async collect(ctx, presented, card) {
      const row = await sessionOf(presented);
      if (row === undefined) fail(CardErrors.CARDS_SESSION_KEY_INVALID, 'invalid publishable key');
      const call: CardCallContext = {
        actor: { ref: `card_session:${row.id}`, kind: 'apikey', purposes: [PAYMENTS_PURPOSE] },
        purpose: PAYMENTS_PURPOSE,
        requestId: ctx.requestId,
        clientAddress: ctx.clientAddress,
      };
      const refuse = async (spec: (typeof CardErrors)[keyof typeof CardErrors], message: string): Promise<never> => {
        await audit.append(cardAuditEntry(call, 'cards.tokenise', row.customer_id, null, [], 'denied'), cardOrigin(call));
        fail(spec, message);
      };
      if (ctx.storefrontOrigin !== undefined && ctx.storefrontOrigin !== row.origin)
        await refuse(CardErrors.CARDS_SESSION_ORIGIN_MISMATCH, 'the publishable key was minted for another storefront origin');
      const now = clock.now().toISOString();
      const spent = await db
        .updateTable('card_sessions')
        .set({ used_at: now })
        .where('id', '=', row.id)
        .where('used_at', 'is', null)
        .where('expires_at', '>', now)
        .executeTakeFirst();
      if (Number(spent.numUpdatedRows) === 0) {
        const current = await db.selectFrom('card_sessions').select(['used_at']).where('id', '=', row.id).executeTakeFirst();
        if (current?.used_at !== null && current?.used_at !== undefined) await refuse(CardErrors.CARDS_SESSION_KEY_USED, 'the publishable key was already used');
        await refuse(CardErrors.CARDS_SESSION_KEY_EXPIRED, 'the publishable key has expired');
      }
      let stored: CardView;
      try {
        stored = await cards.tokenise(call, { ...card, token_format: row.token_format, ...(row.customer_id === null ? {} : { customer_id: row.customer_id }) });
      } catch (error) {
        // Refused before anything was stored: the key is the customer's again.
        if (error instanceof AppError && error.status < 500)
          await db.updateTable('card_sessions').set({ used_at: null }).where('id', '=', row.id).where('used_at', '=', now).where('card_token', 'is', null).execute();
        throw error;
      }
      await db.updateTable('card_sessions').set({ card_token: stored.token }).where('id', '=', row.id).execute();
      return { ...stored, origin: row.origin, session: row.id };
    },

    async sweep() {
      const cutoff = new Date(clock.now().getTime() - CARD_SESSION_KEEP_MS).toISOString();
      const result = await db.deleteFrom('card_sessions').where('expires_at', '<', cutoff).executeTakeFirst();
      return Number(result.numDeletedRows);
    },
  };
}
