import type { Kysely } from 'kysely';
import { open, seal } from '../../crypto/aead.ts';
import type { Clock } from '../../kernel/clock.ts';
import { AppError, fail } from '../../kernel/errors.ts';
import { newId } from '../../kernel/ids.ts';
import type { Database } from '../../store/schema.ts';
import { isIP } from 'node:net';
import { sourceOf } from '../../kernel/security-events.ts';
import type { AuditContext, AuditLog } from '../audit/service.ts';
import type { CollectionDef } from '../inventory/index.ts';
import type { Actor, PolicyService } from '../policy/service.ts';
import { binOf, detectBrand, expiryEnd, expiryProblem, isToken, last4Of, newToken, panFingerprint, panProblem, type Brand, type TokenFormat } from './card-rules.ts';
import { PolicyErrors } from '../policy/errors.ts';
import { CardErrors } from './errors.ts';
import type { CardKeys } from './keys.ts';
import type { CvvStore } from './cvv-store.ts';

export const CARDS_COLLECTION = 'cards';
/** The purpose a customer's cards are read for in their export (the rights process). */
const EXPORT_PURPOSE = 'rights';
/** The purpose every card operation states (default inventory: legal basis contract). */
export const PAYMENTS_PURPOSE = 'payments';
const CARD_FIELDS = ['pan', 'exp_month', 'exp_year', 'cardholder_name'] as const;

export interface CardCallContext {
  readonly actor: Actor;
  readonly purpose: string | undefined;
  readonly requestId: string;
  /** The client address: the origin of every card audit entry (PCI DSS 10.2.2), kept by detection, never in the audit log (`cardOrigin`). */
  readonly clientAddress: string;
}

export interface TokeniseInput {
  readonly pan: string;
  readonly exp_month: number;
  readonly exp_year: number;
  readonly cardholder_name?: string | undefined;
  readonly customer_id?: string | undefined;
  readonly token_format?: TokenFormat | undefined;
  /** Never stored: sealed in the CVV store for one relay use (cvv-store.ts). */
  readonly cvv?: string | undefined;
}

export interface CardView {
  token: string;
  brand: Brand;
  bin: string;
  last4: string;
  exp_month: number;
  exp_year: number;
  cardholder_name?: string;
  customer_id?: string | null;
}

export interface RetentionReport {
  quarter: string;
  from: string;
  to: string;
  removed: { delete: number; expiry: number };
  stored: number;
  /** Cards still stored although their expiry plus the grace period has passed (0 when the sweep runs). */
  overdue: number;
}

/** What a sealed card holds; only the relay and staff reveal ever open it. */
export interface CardSecret {
  readonly pan: string;
  readonly exp_month: number;
  readonly exp_year: number;
  readonly cardholder_name: string | null;
}

export interface CardService {
  /**
   * The purpose check of card operations for work done outside this service (card sessions): the
   * stated purpose must be the caller's and may write (or read) cards for this customer; a refusal
   * is audited as `action` and thrown.
   */
  authorize(ctx: CardCallContext, action: string, customerId: string | undefined, use: 'read' | 'write'): Promise<void>;
  tokenise(ctx: CardCallContext, input: TokeniseInput): Promise<CardView>;
  read(ctx: CardCallContext, token: string): Promise<CardView>;
  /**
   * A customer's stored cards for their access or portability export (GDPR Art. 15(3), 20), as a
   * read shows them: brand, BIN, last four, expiry and cardholder name, never the PAN (PCI DSS
   * 3.4.1); with when each was stored. Audited as `cards.export` (the caller states `rights`).
   */
  forCustomer(ctx: CardCallContext, customerId: string): Promise<(CardView & { created_at: string })[]>;
  remove(ctx: CardCallContext, token: string): Promise<void>;
  /**
   * Removes (as DELETE does) cards whose expiry month ended more than `graceDays` ago, each audited
   * as `cards.expire` by the system; returns how many (PCI DSS 3.2.1: kept no longer than needed).
   */
  sweepExpired(graceDays: number): Promise<number>;
  /** What was removed in a calendar quarter (`2026Q4`), by cause, and whether expired cards remain (PCI DSS 3.2.1: checked every three months). */
  retentionReport(quarter: string): Promise<RetentionReport>;
  /** Re-seals up to `batch` cards under the current card keys; returns how many it moved (0: done). */
  resealBatch(batch: number): Promise<number>;
  /** Cards not yet under the current card-vault key version. */
  pendingReseal(): Promise<number>;
  /**
   * The card data behind `tokens` for one relay call (PCI DSS 3.3.2: the CVV only if still
   * waiting); audited per token as `cards.relay`. Unknown or deleted tokens refuse the call.
   */
  relaySecrets(ctx: CardCallContext, tokens: readonly string[], fields: ReadonlyMap<string, ReadonlySet<string>>): Promise<Map<string, CardSecret & { cvv?: string }>>;
  /**
   * The full PAN for a staff member the caller has checked (cards.reveal, fresh step-up), with the
   * stated reason kept sealed in card_reveals and an audit entry; never for an API key.
   */
  reveal(ctx: CardCallContext & { readonly memberId: string }, token: string, reason: string): Promise<{ pan: string; revealId: string }>;
  /** Audits a refused reveal (permission, step-up) before the refusal is answered. */
  revealDenied(ctx: CardCallContext, token: string): Promise<void>;
  /** Drops the CVVs of these tokens (at the first relay response). */
  dropCvvs(tokens: readonly string[]): Promise<void>;
  /** Adds a card-vault and a card-index key version (`custos keys rotate --cards`), then `resealBatch` until done. */
  rotateKeys(): Promise<{ vault: number; index: number }>;
}

/**
 * The origin of a card event (PCI DSS 4.0.1 10.2.2) without a client address in the append-only
 * audit log: the entry carries the request id, and the audit context hands the client address to
 * detection, which keeps request id → source in detection_origins for a year
 * (src/modules/detection/sources.ts; `custos detection origin REQUEST_ID` resolves it). Calls
 * made outside a request (the CLI) have no address.
 */
export function cardOrigin(ctx: Pick<CardCallContext, 'clientAddress'>): AuditContext | undefined {
  return isIP(ctx.clientAddress) === 0 ? undefined : { source: sourceOf(ctx.clientAddress) };
}

/** The policy's subject for a card linked to no customer. */
const NO_CUSTOMER = 'cards';

/**
 * A card audit entry: actor, purpose, token and field names, and the request id that detection's
 * origin records resolve to the client address (PCI DSS 10.2.2, `cardOrigin`); never card data,
 * never the address. `subjectId` is the customer, or none for a card linked to nobody.
 */
export function cardAuditEntry(ctx: CardCallContext, action: string, subjectId: string | null, recordId: string | null, fields: readonly string[], outcome: 'success' | 'denied' | 'failure') {
  return {
    actor: ctx.actor.ref,
    action,
    subjectId: subjectId === NO_CUSTOMER ? null : subjectId,
    collection: CARDS_COLLECTION,
    recordId,
    fields: [...fields],
    purpose: ctx.purpose ?? null,
    outcome,
    requestId: ctx.requestId,
  };
}
const aad = (token: string, version: number) => `custos:card|${token}|${version}`;

/**
 * The card vault. PANs are sealed with AES-256-GCM under the card-vault key (PCI DSS 3.5.1), bound
 * to their token and key version; reads return brand, BIN, last four, expiry and cardholder name,
 * never the PAN (PCI DSS 3.4.1). In deterministic mode a card already stored returns its existing
 * token, found through the keyed-hash index (PCI DSS 3.5.1.1); tokens are always random. Every
 * operation is audited with the client address, never with card data (PCI DSS 10.2).
 */
export function createCardService(deps: {
  db: Kysely<Database>;
  keys: CardKeys;
  policy: PolicyService;
  audit: AuditLog;
  clock: Clock;
  collection: CollectionDef;
  deterministic: boolean;
  cvvs: CvvStore;
  /** Days a card stays after its expiry month (CUSTOS_CARDS_EXPIRY_GRACE_DAYS). */
  graceDays: number;
}): CardService {
  const { db, keys, policy, audit, clock, cvvs } = deps;

  /** One path for the purpose check of every card operation: stated, the caller's, and one that may use cards. */
  async function checkPurpose(ctx: CardCallContext, subjectId: string, action: string, token: string | null, write: boolean): Promise<void> {
    try {
      const purpose = policy.checkPurpose(ctx.actor, ctx.purpose, write ? 'write' : 'read');
      if (write) await policy.authorizeWrite(ctx.actor, purpose, subjectId, CARDS_COLLECTION, CARD_FIELDS);
      else if ((await policy.decide(ctx.actor, purpose, subjectId, deps.collection)).size === 0)
        fail(CardErrors.CARDS_PURPOSE_NOT_ALLOWED, 'the stated purpose may not use cards; state payments');
    } catch (error) {
      if (error instanceof AppError) await audit.append(cardAuditEntry(ctx, action, subjectId, token, [], 'denied'), cardOrigin(ctx));
      if (error instanceof AppError && error.code === 'POLICY_WRITE_NOT_ALLOWED') fail(CardErrors.CARDS_PURPOSE_NOT_ALLOWED, 'the stated purpose may not use cards; state payments');
      throw error;
    }
  }

  function validate(input: TokeniseInput): Brand {
    const problem = panProblem(input.pan);
    if (problem === 'not_digits') fail(CardErrors.CARDS_PAN_NOT_DIGITS, 'pan must be digits only');
    if (problem === 'length') fail(CardErrors.CARDS_PAN_LENGTH, 'pan must be 12 to 19 digits');
    if (problem === 'luhn') fail(CardErrors.CARDS_PAN_LUHN, 'pan fails the Luhn check');
    const brand = detectBrand(input.pan);
    if (problem === 'brand' || brand === undefined) fail(CardErrors.CARDS_PAN_BRAND_UNKNOWN, 'pan is in no known IIN range for its length');
    const expiry = expiryProblem(input.exp_month, input.exp_year, clock.now());
    if (expiry === 'impossible') fail(CardErrors.CARDS_EXPIRY_IMPOSSIBLE, 'exp_month must be 1-12 and exp_year a four-digit year within 20 years');
    if (expiry === 'expired') fail(CardErrors.CARDS_EXPIRED, 'the card has expired');
    if (input.cvv !== undefined && !(brand === 'amex' ? /^\d{4}$/ : /^\d{3}$/).test(input.cvv)) fail(CardErrors.CARDS_CVV_INVALID, 'cvv must be 3 digits (4 for American Express)');
    return brand;
  }

  const cvvAad = (token: string, version: number) => `custos:cvv|${token}|${version}`;

  /** The CVV sealed under the current card-vault key, its version in the first four bytes. */
  async function keepCvv(token: string, cvv: string | undefined): Promise<void> {
    if (cvv === undefined) return;
    const current = keys.current();
    const head = Buffer.alloc(4);
    head.writeUInt32BE(current.version);
    await cvvs.put(token, Buffer.concat([head, seal(current.key, Buffer.from(cvv, 'utf8'), cvvAad(token, current.version))]));
  }

  async function takeCvv(token: string): Promise<string | undefined> {
    const box = await cvvs.get(token);
    if (box === undefined || box.length < 4) return undefined;
    const version = box.readUInt32BE(0);
    const key = await keys.vault(version);
    const plain = key === undefined ? undefined : open(key, box.subarray(4), cvvAad(token, version));
    return plain?.toString('utf8');
  }

  async function row(token: string) {
    if (!isToken(token)) fail(CardErrors.CARDS_TOKEN_MALFORMED, 'the token is not well-formed');
    const found = await db.selectFrom('cards').selectAll().where('token', '=', token).executeTakeFirst();
    if (found === undefined) fail(CardErrors.CARDS_TOKEN_UNKNOWN, 'no card has this token');
    if (found.deleted_at !== null) fail(CardErrors.CARDS_TOKEN_DELETED, 'this card was deleted');
    return found;
  }

  const tombstone = (removedBy: 'delete' | 'expiry') => ({
    customer_id: null,
    brand: null,
    bin: null,
    last4: null,
    expires_at: null,
    key_version: null,
    sealed: null,
    fingerprint: null,
    fingerprint_version: null,
    deleted_at: clock.now().toISOString(),
    removed_by: removedBy,
  });

  async function openRow(r: Database['cards']): Promise<CardSecret> {
    const key = r.key_version === null ? undefined : await keys.vault(r.key_version);
    const plain = key === undefined || r.sealed === null ? undefined : open(key, Buffer.from(r.sealed, 'base64url'), aad(r.token, r.key_version!));
    if (plain === undefined) fail(CardErrors.CARDS_INTEGRITY_FAILURE, 'a stored card failed authentication; nothing was released');
    return JSON.parse(plain.toString('utf8')) as CardSecret;
  }

  const sealFor = (token: string, secret: CardSecret) => {
    const current = keys.current();
    return { key_version: current.version, sealed: seal(current.key, Buffer.from(JSON.stringify(secret), 'utf8'), aad(token, current.version)).toString('base64url') };
  };

  const view = (r: Database['cards'], secret: CardSecret, withName: boolean): CardView => ({
    token: r.token,
    brand: r.brand as Brand,
    bin: r.bin!,
    last4: r.last4!,
    exp_month: secret.exp_month,
    exp_year: secret.exp_year,
    ...(withName && secret.cardholder_name !== null ? { cardholder_name: secret.cardholder_name } : {}),
    customer_id: r.customer_id,
  });

  return {
    authorize: (ctx, action, customerId, use) => checkPurpose(ctx, customerId ?? NO_CUSTOMER, action, null, use === 'write'),

    async tokenise(ctx, input) {
      const subject = input.customer_id ?? NO_CUSTOMER;
      await checkPurpose(ctx, subject, 'cards.tokenise', null, true);
      const brand = validate(input);
      const secret: CardSecret = { pan: input.pan, exp_month: input.exp_month, exp_year: input.exp_year, cardholder_name: input.cardholder_name ?? null };
      const index = keys.index()[0]!;
      const fingerprint = deps.deterministic ? panFingerprint(index.key, input.pan) : null;
      if (deps.deterministic) {
        // Every index key version, so a card stored before an index rotation is still found.
        const prints = keys.index().map((k) => panFingerprint(k.key, input.pan));
        const existing = await db.selectFrom('cards').selectAll().where('fingerprint', 'in', prints).where('deleted_at', 'is', null).executeTakeFirst();
        if (existing !== undefined) {
          await keepCvv(existing.token, input.cvv);
          await audit.append(cardAuditEntry(ctx, 'cards.tokenise', existing.customer_id ?? subject, existing.token, CARD_FIELDS, 'success'), cardOrigin(ctx));
          return view(existing, await openRow(existing), false);
        }
      }
      const format = input.token_format ?? 'opaque';
      const now = clock.now().toISOString();
      for (let attempt = 0; ; attempt++) {
        const token = newToken(format, input.pan);
        const values = {
          token,
          customer_id: input.customer_id ?? null,
          brand,
          bin: binOf(input.pan),
          last4: last4Of(input.pan),
          expires_at: expiryEnd(input.exp_month, input.exp_year).toISOString(),
          ...sealFor(token, secret),
          fingerprint,
          fingerprint_version: fingerprint === null ? null : index.version,
          created_at: now,
          deleted_at: null,
          removed_by: null,
        };
        // A format-preserving token may collide with one already issued: draw again.
        const inserted = await db.transaction().execute(async (tx) => {
          const result = await tx.insertInto('cards').values(values).onConflict((oc) => oc.column('token').doNothing()).executeTakeFirst();
          if (Number(result.numInsertedOrUpdatedRows ?? 0n) === 0) return false;
          await audit.appendInTx(tx, cardAuditEntry(ctx, 'cards.tokenise', input.customer_id ?? subject, token, CARD_FIELDS, 'success'), cardOrigin(ctx));
          return true;
        });
        if (inserted) {
          await keepCvv(token, input.cvv);
          return view(values, secret, false);
        }
        if (attempt >= 8) throw new Error('could not draw an unused token');
      }
    },

    async read(ctx, token) {
      const r = await row(token);
      const subject = r.customer_id ?? NO_CUSTOMER;
      await checkPurpose(ctx, subject, 'cards.read', token, false);
      const secret = await openRow(r);
      await audit.append(cardAuditEntry(ctx, 'cards.read', subject, token, ['exp_month', 'exp_year', 'cardholder_name'], 'success'), cardOrigin(ctx));
      return view(r, secret, true);
    },

    async forCustomer(ctx, customerId) {
      if (ctx.purpose !== EXPORT_PURPOSE) fail(PolicyErrors.POLICY_PURPOSE_NOT_ALLOWED, `cards are exported only for ${EXPORT_PURPOSE}`);
      await policy.authorize(ctx.actor, EXPORT_PURPOSE, customerId);
      const rows = await db.selectFrom('cards').selectAll().where('customer_id', '=', customerId).where('deleted_at', 'is', null).orderBy('created_at').orderBy('token').execute();
      if (rows.length === 0) return [];
      await audit.append(cardAuditEntry(ctx, 'cards.export', customerId, null, ['exp_month', 'exp_year', 'cardholder_name'], 'success'), cardOrigin(ctx));
      const out: (CardView & { created_at: string })[] = [];
      for (const r of rows) out.push({ ...view(r, await openRow(r), true), created_at: r.created_at });
      return out;
    },

    async remove(ctx, token) {
      const r = await row(token);
      const subject = r.customer_id ?? NO_CUSTOMER;
      await checkPurpose(ctx, subject, 'cards.delete', token, true);
      await db.transaction().execute(async (tx) => {
        await tx.updateTable('cards').set(tombstone('delete')).where('token', '=', token).execute();
        await audit.appendInTx(tx, cardAuditEntry(ctx, 'cards.delete', subject, token, CARD_FIELDS, 'success'), cardOrigin(ctx));
      });
    },

    async resealBatch(batch) {
      const current = keys.current();
      const index = keys.index()[0]!;
      const rows = await db.selectFrom('cards').selectAll().where('deleted_at', 'is', null).where('key_version', '!=', current.version).limit(batch).execute();
      let moved = 0;
      for (const r of rows) {
        const secret = await openRow(r);
        const result = await db
          .updateTable('cards')
          .set({
            ...sealFor(r.token, secret),
            ...(r.fingerprint === null ? {} : { fingerprint: panFingerprint(index.key, secret.pan), fingerprint_version: index.version }),
          })
          .where('token', '=', r.token)
          .where('key_version', '=', r.key_version)
          .executeTakeFirst();
        moved += Number(result.numUpdatedRows);
      }
      return moved;
    },

    async relaySecrets(ctx, tokens, fields) {
      const out = new Map<string, CardSecret & { cvv?: string }>();
      for (const token of tokens) {
        const r = await row(token);
        const subject = r.customer_id ?? NO_CUSTOMER;
        await checkPurpose(ctx, subject, 'cards.relay', token, false);
        const secret = await openRow(r);
        const used = fields.get(token) ?? new Set<string>();
        let cvv: string | undefined;
        if (used.has('cvv')) {
          cvv = await takeCvv(token);
          if (cvv === undefined) {
            await audit.append(cardAuditEntry(ctx, 'cards.relay', subject, token, [...used], 'denied'), cardOrigin(ctx));
            fail(CardErrors.CARDS_CVV_UNAVAILABLE, 'no CVV is waiting for this token (used, expired after 10 minutes, or never given)');
          }
        }
        await audit.append(cardAuditEntry(ctx, 'cards.relay', subject, token, [...used].sort(), 'success'), cardOrigin(ctx));
        out.set(token, cvv === undefined ? secret : { ...secret, cvv });
      }
      return out;
    },

    async reveal(ctx, token, reason) {
      if (ctx.actor.kind !== 'staff') fail(CardErrors.CARDS_REVEAL_API_KEY, 'only staff holding cards.reveal can reveal a card number');
      const r = await row(token);
      const secret = await openRow(r);
      const current = keys.current();
      const id = newId('rev', clock.now().getTime());
      await db.transaction().execute(async (tx) => {
        await tx
          .insertInto('card_reveals')
          .values({
            id,
            token,
            member_id: ctx.memberId,
            key_version: current.version,
            reason: seal(current.key, Buffer.from(reason, 'utf8'), `custos:card-reveal|${id}|${current.version}`).toString('base64url'),
            at: clock.now().toISOString(),
          })
          .execute();
        await audit.appendInTx(tx, { ...cardAuditEntry(ctx, 'cards.reveal', r.customer_id ?? NO_CUSTOMER, token, ['pan', 'reason'], 'success'), purpose: PAYMENTS_PURPOSE }, cardOrigin(ctx));
      });
      return { pan: secret.pan, revealId: id };
    },

    async revealDenied(ctx, token) {
      await audit.append({ ...cardAuditEntry(ctx, 'cards.reveal', NO_CUSTOMER, isToken(token) ? token : null, ['pan'], 'denied'), purpose: PAYMENTS_PURPOSE }, cardOrigin(ctx));
    },

    async dropCvvs(tokens) {
      for (const token of tokens) await cvvs.drop(token);
    },

    rotateKeys: () => keys.rotate(),

    async sweepExpired(graceDays) {
      const cutoff = new Date(clock.now().getTime() - graceDays * 86_400_000).toISOString();
      const due = await db.selectFrom('cards').select(['token', 'customer_id']).where('deleted_at', 'is', null).where('expires_at', '<=', cutoff).execute();
      let removed = 0;
      for (const card of due) {
        await db.transaction().execute(async (tx) => {
          const done = await tx.updateTable('cards').set(tombstone('expiry')).where('token', '=', card.token).where('deleted_at', 'is', null).executeTakeFirst();
          if (Number(done.numUpdatedRows) === 0) return;
          removed += 1;
          await audit.appendInTx(tx, { actor: 'system', action: 'cards.expire', subjectId: card.customer_id, collection: CARDS_COLLECTION, recordId: card.token, fields: [...CARD_FIELDS], outcome: 'success' });
        });
      }
      return removed;
    },

    async retentionReport(quarter) {
      const m = /^(\d{4})Q([1-4])$/.exec(quarter);
      if (m === null) throw new RangeError('quarter must look like 2026Q4');
      const year = Number(m[1]);
      const q = Number(m[2]);
      const from = new Date(Date.UTC(year, (q - 1) * 3, 1)).toISOString();
      const to = new Date(Date.UTC(year, q * 3, 1)).toISOString();
      const rows = await db
        .selectFrom('cards')
        .select(['removed_by', (eb) => eb.fn.countAll<number>().as('n')])
        .where('deleted_at', '>=', from)
        .where('deleted_at', '<', to)
        .groupBy('removed_by')
        .execute();
      const count = (by: string) => Number(rows.find((r) => r.removed_by === by)?.n ?? 0);
      const stored = await db.selectFrom('cards').select((eb) => eb.fn.countAll<number>().as('n')).where('deleted_at', 'is', null).executeTakeFirst();
      const overdue = await db
        .selectFrom('cards')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('deleted_at', 'is', null)
        .where('expires_at', '<=', new Date(clock.now().getTime() - deps.graceDays * 86_400_000).toISOString())
        .executeTakeFirst();
      return { quarter, from, to, removed: { delete: count('delete'), expiry: count('expiry') }, stored: Number(stored?.n ?? 0), overdue: Number(overdue?.n ?? 0) };
    },

    async pendingReseal() {
      const r = await db
        .selectFrom('cards')
        .select((eb) => eb.fn.countAll<number>().as('n'))
        .where('deleted_at', 'is', null)
        .where('key_version', '!=', keys.current().version)
        .executeTakeFirst();
      return Number(r?.n ?? 0);
    },
  };
}
