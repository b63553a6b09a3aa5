import type { CollectionDef, Inventory } from '../inventory/index.ts';
import { fail } from '../../kernel/errors.ts';
import { PolicyErrors } from './errors.ts';
import { ERASING } from '../rights/restriction-column.ts';

/**
 * The one decision point for "who may read which field, for which purpose, masked or clear", and
 * for "who may write which field, through which purpose" (DESIGN.md, data flow of a read; writes
 * go through the same policy). Inputs: the actor's scope, the stated purpose, the inventory's
 * per-field purposes (legal basis, access, write), and — for consent-based purposes, on reads —
 * the consent capability, and — on reads — the restriction of processing (GDPR Art. 18) and an
 * accepted erasure still completing (Art. 17), both from one statement of the gate. Both
 * answers are tables built once from the inventory. Extra checks (staff training, MFA) plug in as
 * guards.
 */
export type Access = 'clear' | 'masked';

export interface Actor {
  /** 'apikey:key_…', 'staff:…', 'customer:…' — as written to the audit log. */
  readonly ref: string;
  readonly kind: 'apikey' | 'staff' | 'customer' | 'system';
  /** Purposes this actor may state. */
  readonly purposes: readonly string[];
}

/**
 * Where the consent capability plugs in: whether the subject has a valid consent for a purpose
 * whose legal basis is consent (GDPR Art. 6(1)(a), 7(1)). Until it exists, nothing is released
 * for consent-based purposes.
 */
export interface ConsentGate {
  permits(subjectId: string, purpose: string): Promise<boolean>;
  /** Whether the subject objected to this purpose's legitimate-interest processing (GDPR Art. 21), pending or upheld. */
  objects?(subjectId: string, purpose: string): Promise<boolean>;
}

/** A decision; `withheld` says why a purpose's fields were left out (the access log's action names it). */
export type Decision = ReadonlyMap<string, Access> & { readonly withheld?: 'no_consent' | 'objection' };

export const noConsentRecorded: ConsentGate = { permits: async () => false };

/**
 * Where restriction of processing (GDPR Art. 18) plugs in (src/modules/rights/restrictions.ts):
 * whether the subject's data is restricted now, with the purposes the subject consented to despite
 * it, or whether their erasure was accepted and is still running (`erasing`: nothing is released
 * to anyone, GDPR Art. 17); and where a refused read is recorded. One statement answers both.
 */
export interface RestrictionGate {
  facts(subjectId: string): Promise<SubjectFacts>;
  refused(actor: Actor, purpose: string, subjectId: string, why?: 'restricted' | 'erasing'): Promise<void>;
}

/**
 * What the policy must know of a subject (src/modules/rights/restriction-column.ts, restrictionOf):
 * `restriction` is ERASING while an accepted erasure completes, the JSON list of purposes still
 * allowed under a restriction in force, or null. The statements that read a subject's records
 * carry it as a column (`withRestriction`), so a read's decision needs no query of its own (a
 * customer read saves a statement, a PostgreSQL round trip, per collection); otherwise the gate
 * reads it with the same expression. The decision is the same either way.
 */
export interface SubjectFacts {
  readonly restriction: string | null;
}

/**
 * Purposes a restriction never stops (GDPR Art. 18(2)): legal claims and obligations, and the
 * rights process itself (answering the customer's requests, their export).
 */
export const RESTRICTION_EXEMPT_PURPOSES: readonly string[] = ['legal_obligation', 'rights'];

/** A guard may refuse a read outright (throw an AppError) before any data is touched. */
export type PolicyGuard = (actor: Actor, purpose: string, subjectId: string) => Promise<void>;

export interface PolicyService {
  /** Checks the purpose is declared and the actor is scoped to it; throws otherwise. `use` words the message. */
  checkPurpose(actor: Actor, purpose: string | undefined, use?: 'read' | 'write'): string;
  /**
   * May this actor touch this subject's data at all, beyond its fields (the access log)? API keys
   * may go without stating a purpose; people (staff, customers) always state one, and the guards
   * run. Writes of fields go through `authorizeWrite`.
   */
  authorize(actor: Actor, purpose: string | undefined, subjectId: string): Promise<void>;
  /**
   * May this actor write (set or clear) these fields of `collection` for this subject? A stated
   * purpose writes alone; an API key (or the system) stating none writes through all its declared
   * purposes together; staff and customers must state one. Each field needs a purpose that the
   * inventory lets write it. Returns the purposes the write goes through (those that may write at
   * least one of the fields, or the stated one); throws POLICY_WRITE_NOT_ALLOWED naming the refused
   * fields and the purposes tried, and runs the guards for each purpose used.
   */
  authorizeWrite(actor: Actor, purpose: string | undefined, subjectId: string, collection: string, fields: readonly string[]): Promise<readonly string[]>;
  /** Fields of `collection` the purpose may see for this subject, each clear or masked. `facts`: what was read with the subject's records (see SubjectFacts). */
  decide(actor: Actor, purpose: string, subjectId: string, collection: CollectionDef, facts?: SubjectFacts): Promise<Decision>;
}

export function createPolicyService(deps: { inventory: Inventory; consent?: ConsentGate; restriction?: RestrictionGate; guards?: readonly PolicyGuard[] }): PolicyService {
  const { inventory } = deps;

  /**
   * A restricted subject's data is stored but released only as Art. 18(2) allows: for an exempt
   * purpose, to the subject themself (their own access, Art. 15), or for a purpose the subject
   * consented to. A subject whose erasure was accepted and is still running has nothing released
   * to anyone, whatever the purpose (the held fields open only through the held records once
   * re-sealed). Checked on every read, here and nowhere else, by one statement of the gate.
   */
  async function checkRestriction(actor: Actor, purpose: string, subjectId: string, known: SubjectFacts | undefined): Promise<void> {
    if (deps.restriction === undefined) return;
    const { restriction } = known ?? (await deps.restriction.facts(subjectId));
    if (restriction === null) return;
    if (restriction === ERASING) {
      await deps.restriction.refused(actor, purpose, subjectId, 'erasing');
      fail(PolicyErrors.POLICY_SUBJECT_ERASED, "the customer's erasure was accepted; nothing of theirs is released (GDPR Art. 17)");
    }
    const allowed = JSON.parse(restriction) as string[];
    if (RESTRICTION_EXEMPT_PURPOSES.includes(purpose) || actor.ref === `customer:${subjectId}` || allowed.includes(purpose)) return;
    await deps.restriction.refused(actor, purpose, subjectId, 'restricted');
    fail(PolicyErrors.POLICY_SUBJECT_RESTRICTED, "the customer restricted the processing of their data; this purpose's read is refused (GDPR Art. 18)");
  }
  const consent = deps.consent ?? noConsentRecorded;
  const guards = deps.guards ?? [];

  // Per collection and purpose, what the inventory allows before consent is taken into account.
  const table = new Map<string, { access: Map<string, Access>; consentFields: Set<string>; interestFields: Set<string> }>();
  for (const col of inventory.collections.values()) {
    for (const purpose of inventory.purposes.keys()) {
      const access = new Map<string, Access>();
      const consentFields = new Set<string>();
      const interestFields = new Set<string>();
      for (const f of col.fields.values()) {
        const use = f.purposes.get(purpose);
        if (use === undefined || use.access === 'none') continue;
        access.set(f.name, use.access);
        if (use.basis === 'consent') consentFields.add(f.name);
        if (use.basis === 'legitimate_interest') interestFields.add(f.name);
      }
      table.set(`${col.name}\u0000${purpose}`, { access, consentFields, interestFields });
    }
  }

  // Per collection and field, the purposes that may write it (inventory `write`).
  const writers = new Map<string, Map<string, ReadonlySet<string>>>();
  for (const col of inventory.collections.values()) {
    const byField = new Map<string, ReadonlySet<string>>();
    for (const f of col.fields.values()) byField.set(f.name, new Set([...f.purposes].filter(([, use]) => use.write).map(([p]) => p)));
    writers.set(col.name, byField);
  }
  const NO_WRITERS: ReadonlyMap<string, ReadonlySet<string>> = new Map();

  return {
    checkPurpose(actor, purpose, use = 'read') {
      if (purpose === undefined || purpose === '') fail(PolicyErrors.POLICY_PURPOSE_REQUIRED, `state the purpose of this ${use} in the Custos-Purpose header`);
      if (!inventory.purposes.has(purpose)) fail(PolicyErrors.POLICY_PURPOSE_UNKNOWN, 'the stated purpose is not declared in the inventory');
      if (!actor.purposes.includes(purpose)) fail(PolicyErrors.POLICY_PURPOSE_NOT_ALLOWED, 'this caller is not allowed to use the stated purpose');
      return purpose;
    },

    async authorize(actor, purpose, subjectId) {
      if (purpose === undefined && (actor.kind === 'apikey' || actor.kind === 'system')) return;
      const stated = this.checkPurpose(actor, purpose);
      for (const guard of guards) await guard(actor, stated, subjectId);
    },

    async authorizeWrite(actor, purpose, subjectId, collection, fields) {
      const anyOfKey = purpose === undefined && (actor.kind === 'apikey' || actor.kind === 'system');
      const through = anyOfKey ? actor.purposes.filter((p) => inventory.purposes.has(p)) : [this.checkPurpose(actor, purpose, 'write')];
      const byField = writers.get(collection) ?? NO_WRITERS;
      const used = new Set<string>();
      const refused: string[] = [];
      for (const field of fields) {
        const may = byField.get(field);
        const granting = may === undefined ? [] : through.filter((p) => may.has(p));
        if (granting.length === 0) refused.push(field);
        for (const p of granting) used.add(p);
      }
      if (refused.length > 0)
        fail(PolicyErrors.POLICY_WRITE_NOT_ALLOWED, `no purpose this write goes through may write ${refused.sort().join(', ')}; nothing was stored`, {
          fields: refused,
          purposes: [...through].sort(),
        });
      const purposes = anyOfKey ? through.filter((p) => used.has(p)).sort() : through;
      for (const p of purposes) for (const guard of guards) await guard(actor, p, subjectId);
      return purposes;
    },

    async decide(actor, purpose, subjectId, collection, facts) {
      this.checkPurpose(actor, purpose);
      for (const guard of guards) await guard(actor, purpose, subjectId);
      await checkRestriction(actor, purpose, subjectId, facts);
      const entry = table.get(`${collection.name}\u0000${purpose}`);
      if (entry === undefined) return new Map();
      if (entry.interestFields.size > 0 && consent.objects !== undefined && (await consent.objects(subjectId, purpose))) {
        const out = new Map(entry.access);
        for (const f of entry.interestFields) out.delete(f);
        return Object.assign(out, { withheld: 'objection' as const });
      }
      if (entry.consentFields.size === 0) return entry.access;
      const consented = await consent.permits(subjectId, purpose);
      if (consented) return entry.access;
      const out = new Map(entry.access);
      for (const f of entry.consentFields) out.delete(f);
      return Object.assign(out, { withheld: 'no_consent' as const });
    },
  };
}
