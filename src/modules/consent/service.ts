import type { KeyObject } from 'node:crypto';
import { sql, type Kysely } from 'kysely';
import type { Clock } from '../../kernel/clock.ts';
import { fail } from '../../kernel/errors.ts';
import { newId } from '../../kernel/ids.ts';
import type { Store } from '../../store/database.ts';
import type { Database } from '../../store/schema.ts';
import type { AuditLog } from '../audit/service.ts';
import type { Inventory } from '../inventory/index.ts';
import type { Actor, ConsentGate, PolicyService } from '../policy/service.ts';
import type { VaultSubjects } from '../vault/audience.ts';
import { ConsentErrors } from './errors.ts';
import { ACTION_OF, ledgerMac, ledgerMacValid, type LedgerRow } from './ledger.ts';
import type { NoticeVersions } from './notice-versions.ts';
import { signReceipt, type ReceiptKeys } from './receipts.ts';
import { CONFIRM_TTL_S, openLink, signLink, UNSUBSCRIBE_TTL_S, type LinkKind } from './links.ts';
import { customerActor } from '../identity/sessions/session-guard.ts';

/**
 * The consent ledger (GDPR Art. 7): every grant and withdrawal is a new row, never an update,
 * committed in one transaction with its audit entry; the current state per purpose is derived
 * from the newest row. The gate the policy asks at every read is this state: a consent counts
 * while it is granted and was given under a notice version at least the purpose's `changed_in`.
 */
export const SOURCES = ['web_form', 'api', 'import', 'gpc', 'unsubscribe_link', 'staff'] as const;
export type Source = (typeof SOURCES)[number];

export interface Proof {
  /** SHA-256 (hex) of the exact text shown to the customer. */
  readonly text_sha256: string;
  readonly channel: string;
  readonly at: string;
}

export interface ConsentInput {
  readonly purpose: string;
  readonly granted: boolean;
  readonly source: Source;
  readonly notice_version: number;
  readonly proof?: Proof | undefined;
}

export interface CallerContext {
  readonly actor: Actor;
  readonly requestId: string;
}

export interface Recorded {
  id: string;
  purpose: string;
  status: LedgerRow['status'];
  source: string;
  notice_version: number;
  recorded_at: string;
  in_force: boolean;
  receipt: string;
}

export interface PurposeState {
  purpose: string;
  status: LedgerRow['status'] | 'none';
  in_force: boolean;
  needs_confirmation: boolean;
  notice_version: number | null;
  changed_in: number;
  source: string | null;
  at: string | null;
}

export interface ConsentState {
  customer_id: string;
  notice_version: number;
  purposes: PurposeState[];
  history: { id: string; purpose: string; status: string; source: string; notice_version: number; proof: Proof | null; actor: string; recorded_at: string }[];
  gpc: { honored: boolean; at: string | null };
}

export interface LedgerProblem {
  /** The ledger row id (from the row, or from the audit entry of a row that is gone). */
  readonly id: string;
  readonly reason: string;
}

export interface ConsentService {
  readonly gate: ConsentGate;
  readonly notices: NoticeVersions;
  readonly receipts: ReceiptKeys;
  /** Records a grant or a withdrawal made through `route` (which sources it may record). */
  record(ctx: CallerContext, subjectId: string, input: ConsentInput, allowed: readonly Source[]): Promise<Recorded>;
  /**
   * Grants the shop imports from its previous system (source `import`): each checked like a
   * recorded grant (consent-based purpose, published notice version, existing customer), all
   * appended with their audit entries in one transaction, or none. No receipts: the customer was
   * not there. The caller sizes the batches (one transaction each).
   */
  importGrants(ctx: CallerContext, grants: readonly { subjectId: string; purpose: string; noticeVersion: number; proof?: Proof | undefined }[]): Promise<number>;
  /** Current state per consent-based purpose, the whole history, and the GPC status. */
  state(ctx: CallerContext, subjectId: string): Promise<ConsentState>;
  /** A Global Privacy Control signal: withdraws every sale/sharing purpose once (CCPA regs §7025). */
  honorGpc(ctx: CallerContext, subjectId: string): Promise<void>;
  /** Every ledger row against its MAC and its audit entry, and every consent audit entry against its row. */
  verifyLedger(): Promise<LedgerProblem[]>;
  /** An objection to a legitimate-interest purpose (GDPR Art. 21(1)): its processing stops at once, pending the privacy officer. */
  object(ctx: CallerContext, subjectId: string, purpose: string, source: Source): Promise<Recorded>;
  /** The privacy officer's decision on a pending objection (the route checks rights.manage). */
  decideObjection(ctx: CallerContext, subjectId: string, purpose: string, upheld: boolean): Promise<Recorded>;
  /** A consent-based purpose the actor is scoped to (CONSENT_PURPOSE_UNKNOWN, _NOT_CONSENT_BASED, POLICY_PURPOSE_NOT_ALLOWED). */
  checkConsentPurpose(actor: Actor, purpose: string): void;
  /**
   * Up to `limit` customers after `after` (by id) whose newest change for this consent-based
   * purpose is a grant under a notice version that still counts: the candidates of its audience,
   * one keyset page. Not a decision: each is read through the vault, whose policy asks the gate
   * again at that moment (a withdrawal meanwhile releases nothing).
   */
  candidates(purpose: string, after: string, limit: number): Promise<string[]>;
  /** A one-click unsubscribe link for this customer and consent-based purpose (RFC 8058). */
  unsubscribeUrl(subjectId: string, purpose: string): string;
  /** Checks an unsubscribe token without recording anything; returns its purpose. */
  checkUnsubscribe(token: string): { purpose: string };
  /** Follows an unsubscribe token: withdraws the consent (source unsubscribe_link) unless already withdrawn. */
  unsubscribe(token: string, requestId: string): Promise<{ purpose: string }>;
  /** Follows a double opt-in confirmation token: the pending grant becomes a grant. */
  confirm(token: string, requestId: string): Promise<{ purpose: string }>;
}

export interface ConsentDeps {
  db: Kysely<Database>;
  read: Store['read'];
  clock: Clock;
  audit: AuditLog;
  inventory: Inventory;
  policy: PolicyService;
  subjects: VaultSubjects;
  notices: NoticeVersions;
  receipts: ReceiptKeys;
  ledgerKey: KeyObject;
  /** The `iss` of receipts (the public URL, or 'custos'). */
  issuer: string;
  /** Signs unsubscribe and confirmation links. */
  linkKey: KeyObject;
  /** The public origin links point at ('' for relative links). */
  baseUrl: string;
  /** Mails the confirmation link of a double opt-in grant to the customer. */
  sendConfirmation?: (subjectId: string, purpose: string, url: string, requestId: string) => Promise<void>;
}

export function createConsentService(deps: ConsentDeps): ConsentService {
  const { db, clock, audit, inventory, policy, subjects, notices, receipts, ledgerKey } = deps;
  const saleOrSharing = [...inventory.purposes.values()].filter((p) => p.consentBased && p.saleOrSharing).map((p) => p.name);

  const LATEST = db
    .selectFrom('consent_ledger')
    .select(['status', 'notice_version'])
    .where('subject_id', '=', '')
    .where('purpose', '=', '')
    .where('status', '<>', 'pending')
    .orderBy('seq', 'desc')
    .limit(sql.lit(1))
    .compile().sql;

  // The newest non-pending row per customer is a grant (the gate's LATEST, over a keyset page).
  const CANDIDATES = db
    .selectFrom('consent_ledger as l')
    .select('l.subject_id')
    .where('l.purpose', '=', '')
    .where('l.subject_id', '>', '')
    .where('l.status', '=', 'granted')
    .where('l.notice_version', '>=', 0)
    .where('l.seq', '=', (eb) =>
      eb.selectFrom('consent_ledger as m').select((e) => e.fn.max('m.seq').as('s')).whereRef('m.subject_id', '=', 'l.subject_id').whereRef('m.purpose', '=', 'l.purpose').where('m.status', '<>', 'pending'),
    )
    .orderBy('l.subject_id')
    .limit(0)
    .compile().sql;

  const inForce = (row: Pick<LedgerRow, 'status' | 'notice_version' | 'purpose'> | undefined, purpose: string) =>
    row !== undefined && row.status === 'granted' && Number(row.notice_version) >= notices.changedIn(purpose);

  const gate: ConsentGate = {
    async permits(subjectId, purpose) {
      const [row] = await deps.read<Pick<LedgerRow, 'status' | 'notice_version'>>(LATEST, [subjectId, purpose, 'pending']);
      return inForce(row === undefined ? undefined : { ...row, purpose }, purpose);
    },
    // Only legitimate-interest purposes have objection rows: the newest row is the objection's state.
    async objects(subjectId, purpose) {
      const [row] = await deps.read<Pick<LedgerRow, 'status'>>(LATEST, [subjectId, purpose, 'pending']);
      return row?.status === 'objected' || row?.status === 'objection_upheld';
    },
  };

  function consentPurpose(purpose: string) {
    const def = inventory.purposes.get(purpose);
    if (def === undefined) fail(ConsentErrors.CONSENT_PURPOSE_UNKNOWN, 'the purpose is not declared in the inventory');
    if (!def.consentBased) fail(ConsentErrors.CONSENT_PURPOSE_NOT_CONSENT_BASED, "the purpose's legal basis is not consent");
    return def;
  }

  async function authorize(ctx: CallerContext, subjectId: string) {
    await policy.authorize(ctx.actor, 'account', subjectId);
    if (!(await subjects.exists(subjectId))) fail(ConsentErrors.CONSENT_SUBJECT_NOT_FOUND, 'no customer with that id');
  }

  async function receiptOf(row: LedgerRow | Omit<LedgerRow, 'seq'>): Promise<string> {
    const proof = row.proof === null ? null : (JSON.parse(row.proof) as Proof);
    return signReceipt(receipts, {
      iss: deps.issuer,
      jti: row.id,
      sub: row.subject_id,
      iat: Math.floor(Date.parse(row.recorded_at) / 1000),
      purpose: row.purpose,
      status: row.status,
      source: row.source,
      notice_version: Number(row.notice_version),
      ...(proof === null ? {} : { proof }),
    });
  }

  /** One ledger row, MACed. */
  function ledgerRow(ctx: CallerContext, subjectId: string, purpose: string, status: LedgerRow['status'], source: Source, noticeVersion: number, proof: Proof | undefined) {
    const row = {
      id: newId('cns', clock.now().getTime()),
      subject_id: subjectId,
      purpose,
      status,
      source,
      notice_version: noticeVersion,
      proof: proof === undefined ? null : JSON.stringify({ text_sha256: proof.text_sha256.toLowerCase(), channel: proof.channel, at: proof.at }),
      actor: ctx.actor.ref,
      recorded_at: clock.now().toISOString(),
      request_id: ctx.requestId,
    };
    return { ...row, mac: ledgerMac(ledgerKey, row) };
  }

  /** Appends rows and their audit entries in one transaction: all or none. */
  async function appendRows(rows: readonly ReturnType<typeof ledgerRow>[]) {
    await db.transaction().execute(async (tx) => {
      await tx.insertInto('consent_ledger').values([...rows]).execute();
      for (const row of rows)
        await audit.appendInTx(tx, {
          actor: row.actor,
          action: ACTION_OF[row.status],
          subjectId: row.subject_id,
          collection: null,
          recordId: row.id,
          fields: [],
          purpose: row.purpose,
          outcome: 'success',
          requestId: row.request_id,
        });
    });
  }

  /** Appends one row and its audit entry in one transaction. */
  async function append(ctx: CallerContext, subjectId: string, purpose: string, status: LedgerRow['status'], source: Source, noticeVersion: number, proof: Proof | undefined) {
    const full = ledgerRow(ctx, subjectId, purpose, status, source, noticeVersion, proof);
    await appendRows([full]);
    return full;
  }

  const nowS = () => Math.floor(clock.now().getTime() / 1000);
  const latestRow = (subjectId: string, purpose: string) =>
    db.selectFrom('consent_ledger').selectAll().where('subject_id', '=', subjectId).where('purpose', '=', purpose).orderBy('seq', 'desc').limit(1).executeTakeFirst();
  /** The claims of an intact, unexpired link for a consent-based purpose of an existing customer. */
  async function linkFor(kind: LinkKind, token: string) {
    const claims = openLink(deps.linkKey, kind, token, nowS());
    consentPurpose(claims.purpose);
    if (!(await subjects.exists(claims.subjectId))) fail(ConsentErrors.CONSENT_LINK_INVALID, 'the link names no customer');
    return { claims, ctx: { actor: customerActor(claims.subjectId), requestId: '' } };
  }

  async function recordedOf(row: Omit<LedgerRow, 'seq'>, inForceNow: boolean): Promise<Recorded> {
    return {
      id: row.id,
      purpose: row.purpose,
      status: row.status,
      source: row.source,
      notice_version: Number(row.notice_version),
      recorded_at: row.recorded_at,
      in_force: inForceNow,
      receipt: await receiptOf(row),
    };
  }

  async function gpcRows(subjectId: string) {
    return db.selectFrom('consent_ledger').select(['purpose', 'recorded_at']).where('subject_id', '=', subjectId).where('source', '=', 'gpc').orderBy('seq').execute();
  }

  async function honor(ctx: CallerContext, subjectId: string): Promise<void> {
    const done = new Set((await gpcRows(subjectId)).map((r) => r.purpose));
    for (const purpose of saleOrSharing) if (!done.has(purpose)) await append(ctx, subjectId, purpose, 'withdrawn', 'gpc', notices.current(), undefined);
  }

  return {
    gate,
    notices,
    receipts,

    async record(ctx, subjectId, input, allowed) {
      const def = consentPurpose(input.purpose);
      if (input.notice_version > notices.current()) await notices.refresh();
      if (!Number.isInteger(input.notice_version) || input.notice_version < 1 || input.notice_version > notices.current())
        fail(ConsentErrors.CONSENT_NOTICE_VERSION_UNKNOWN, 'no notice with that version was published');
      if (!allowed.includes(input.source)) fail(ConsentErrors.CONSENT_SOURCE_INVALID, 'this caller may not record consents from that source');
      if (input.source === 'gpc' && (input.granted || !def.saleOrSharing))
        fail(ConsentErrors.CONSENT_SOURCE_INVALID, 'a Global Privacy Control signal only withdraws sale or sharing purposes');
      await authorize(ctx, subjectId);
      let row: Omit<LedgerRow, 'seq'>;
      if (input.source === 'gpc') {
        await honor(ctx, subjectId);
        const latest = await db.selectFrom('consent_ledger').selectAll().where('subject_id', '=', subjectId).where('purpose', '=', input.purpose).orderBy('seq', 'desc').limit(1).executeTakeFirstOrThrow();
        row = latest;
      } else {
        const status = !input.granted ? 'withdrawn' : def.doubleOptIn ? 'pending' : 'granted';
        row = await append(ctx, subjectId, input.purpose, status, input.source, input.notice_version, input.proof);
        if (status === 'pending' && deps.sendConfirmation !== undefined) {
          const token = signLink(deps.linkKey, { kind: 'confirm', subjectId, purpose: input.purpose, row: row.id, exp: nowS() + CONFIRM_TTL_S });
          await deps.sendConfirmation(subjectId, input.purpose, `${deps.baseUrl}/v1/consents/confirm/${token}`, ctx.requestId);
        }
      }
      return recordedOf(row, await gate.permits(subjectId, row.purpose));
    },

    async importGrants(ctx, grants) {
      const rows: ReturnType<typeof ledgerRow>[] = [];
      for (const g of grants) {
        const def = consentPurpose(g.purpose);
        if (!Number.isInteger(g.noticeVersion) || g.noticeVersion < 1 || g.noticeVersion > notices.current())
          fail(ConsentErrors.CONSENT_NOTICE_VERSION_UNKNOWN, 'no notice with that version was published');
        await authorize(ctx, g.subjectId);
        rows.push(ledgerRow(ctx, g.subjectId, g.purpose, def.doubleOptIn ? 'pending' : 'granted', 'import', g.noticeVersion, g.proof));
      }
      if (rows.length > 0) await appendRows(rows);
      return rows.length;
    },

    async state(ctx, subjectId) {
      await authorize(ctx, subjectId);
      await audit.append({ actor: ctx.actor.ref, action: 'consent.read', subjectId, fields: [], purpose: 'account', outcome: 'success', requestId: ctx.requestId });
      const rows = await db.selectFrom('consent_ledger').selectAll().where('subject_id', '=', subjectId).orderBy('seq').execute();
      const purposes: PurposeState[] = [];
      for (const p of inventory.purposes.values()) {
        if (!p.consentBased) continue;
        const mine = rows.filter((r) => r.purpose === p.name);
        const latest = mine.filter((r) => r.status !== 'pending').at(-1);
        const pending = mine.at(-1)?.status === 'pending' ? mine.at(-1) : undefined;
        const shown = pending ?? latest;
        const changedIn = notices.changedIn(p.name);
        purposes.push({
          purpose: p.name,
          status: shown?.status ?? 'none',
          in_force: inForce(latest, p.name),
          needs_confirmation: latest?.status === 'granted' && Number(latest.notice_version) < changedIn,
          notice_version: shown === undefined ? null : Number(shown.notice_version),
          changed_in: changedIn,
          source: shown?.source ?? null,
          at: shown?.recorded_at ?? null,
        });
      }
      const gpc = rows.find((r) => r.source === 'gpc');
      return {
        customer_id: subjectId,
        notice_version: notices.current(),
        purposes,
        history: rows.map((r) => ({
          id: r.id,
          purpose: r.purpose,
          status: r.status,
          source: r.source,
          notice_version: Number(r.notice_version),
          proof: r.proof === null ? null : (JSON.parse(r.proof) as Proof),
          actor: r.actor,
          recorded_at: r.recorded_at,
        })),
        gpc: { honored: gpc !== undefined, at: gpc?.recorded_at ?? null },
      };
    },

    async honorGpc(ctx, subjectId) {
      if (saleOrSharing.length === 0) return;
      if (!(await subjects.exists(subjectId))) return;
      await honor(ctx, subjectId);
    },

    async object(ctx, subjectId, purpose, source) {
      const def = inventory.purposes.get(purpose);
      if (def === undefined) fail(ConsentErrors.CONSENT_PURPOSE_UNKNOWN, 'the purpose is not declared in the inventory');
      if (!def.bases.includes('legitimate_interest')) fail(ConsentErrors.CONSENT_PURPOSE_NOT_OBJECTABLE, 'the purpose is not based on legitimate interests');
      await authorize(ctx, subjectId);
      const row = await append(ctx, subjectId, purpose, 'objected', source, notices.current(), undefined);
      return recordedOf(row, false);
    },

    async decideObjection(ctx, subjectId, purpose, upheld) {
      if (!(await subjects.exists(subjectId))) fail(ConsentErrors.CONSENT_SUBJECT_NOT_FOUND, 'no customer with that id');
      const latest = await latestRow(subjectId, purpose);
      if (latest?.status !== 'objected') fail(ConsentErrors.CONSENT_OBJECTION_NOT_PENDING, 'no pending objection to decide');
      const row = await append(ctx, subjectId, purpose, upheld ? 'objection_upheld' : 'objection_rejected', 'staff', notices.current(), undefined);
      return recordedOf(row, false);
    },

    checkConsentPurpose(actor, purpose) {
      consentPurpose(purpose);
      policy.checkPurpose(actor, purpose);
    },

    async candidates(purpose, after, limit) {
      consentPurpose(purpose);
      const rows = await deps.read<{ subject_id: string }>(CANDIDATES, [purpose, after, 'granted', notices.changedIn(purpose), 'pending', limit]);
      return rows.map((r) => r.subject_id);
    },

    unsubscribeUrl(subjectId, purpose) {
      consentPurpose(purpose);
      return `${deps.baseUrl}/v1/unsubscribe/${signLink(deps.linkKey, { kind: 'unsubscribe', subjectId, purpose, exp: nowS() + UNSUBSCRIBE_TTL_S })}`;
    },

    checkUnsubscribe(token) {
      const claims = openLink(deps.linkKey, 'unsubscribe', token, nowS());
      consentPurpose(claims.purpose);
      return { purpose: claims.purpose };
    },

    async unsubscribe(token, requestId) {
      const { claims, ctx } = await linkFor('unsubscribe', token);
      const latest = await latestRow(claims.subjectId, claims.purpose);
      if (latest?.status !== 'withdrawn')
        await append({ ...ctx, requestId }, claims.subjectId, claims.purpose, 'withdrawn', 'unsubscribe_link', notices.current(), undefined);
      return { purpose: claims.purpose };
    },

    async confirm(token, requestId) {
      const { claims, ctx } = await linkFor('confirm', token);
      const latest = await latestRow(claims.subjectId, claims.purpose);
      // Only the newest change counts: a withdrawal (or a newer grant) after the pending one stands.
      if (latest === undefined || latest.id !== claims.row || latest.status !== 'pending') fail(ConsentErrors.CONSENT_LINK_INVALID, 'the grant this link confirms is no longer pending');
      const proof = latest.proof === null ? undefined : (JSON.parse(latest.proof) as Proof);
      await append({ ...ctx, requestId }, claims.subjectId, claims.purpose, 'granted', latest.source as Source, Number(latest.notice_version), proof);
      return { purpose: claims.purpose };
    },

    async verifyLedger() {
      const problems: LedgerProblem[] = [];
      const entries = new Map<string, { action: string; subjectId: string | null; purpose: string | null; macValid: boolean }>();
      for (let after = 0; ; ) {
        const page = await audit.byAction('consent.', { limit: 1000, after });
        for (const e of page) if (e.recordId !== null) entries.set(e.recordId, e);
        if (page.length < 1000) break;
        after = page.at(-1)!.id;
      }
      const seen = new Set<string>();
      for (let after = Number.MIN_SAFE_INTEGER; ; ) {
        const page = await db.selectFrom('consent_ledger').selectAll().where('seq', '>', after).orderBy('seq').limit(1000).execute();
        for (const row of page) {
          seen.add(row.id);
          const entry = entries.get(row.id);
          if (!ledgerMacValid(ledgerKey, row)) problems.push({ id: row.id, reason: 'the ledger row does not match its MAC: it was altered' });
          else if (entry === undefined) problems.push({ id: row.id, reason: 'the ledger row has no audit entry: it was inserted outside Custos' });
          else if (entry.action !== ACTION_OF[row.status] || entry.subjectId !== row.subject_id || entry.purpose !== row.purpose)
            problems.push({ id: row.id, reason: 'the ledger row differs from its audit entry' });
        }
        if (page.length < 1000) break;
        after = Number(page.at(-1)!.seq);
      }
      for (const [id, entry] of entries)
        if (!seen.has(id) && entry.macValid) problems.push({ id, reason: 'the ledger row of this audit entry is missing: it was deleted' });
      return problems;
    },
  };
}
