import type { Inventory } from '../inventory/index.ts';
import { fieldKey, TOUCHES, type Activity, type AtRest, type Touch } from './blast-radius.ts';
import { decide, type Decision, type Exposure, type KeyFacts, type Reason } from './protection.ts';

/**
 * The blast radius as the API, the drafts and the export give it: counts and decisions, with the
 * affected customers (ids only — still personal data, so only holders of incidents.manage see it
 * and every reading is audited).
 */
export interface ActorRef {
  readonly kind: 'staff' | 'apikey' | 'source';
  readonly id: string;
}

export interface FieldReport {
  readonly collection: string;
  readonly field: string;
  readonly category: string;
  readonly at_rest: AtRest;
  readonly entries: number;
  readonly customers: number;
  readonly touches: Readonly<Record<Touch, number>>;
  readonly decision: Decision;
  readonly reason: Reason;
  readonly art34_3_a: boolean;
  readonly modified: boolean;
}

export interface CategoryReport {
  readonly category: string;
  readonly fields: readonly string[];
  readonly customers: number;
  readonly entries: number;
  /** The worst decision among its fields. */
  readonly decision: Decision;
}

export interface CustomerReport {
  readonly customer_id: string;
  readonly entries: number;
  readonly records: number;
  readonly first_at: string;
  readonly last_at: string;
  readonly fields: readonly string[];
  /** Fields decided `exposed` or `masked` for this customer. */
  readonly exposed_fields: readonly string[];
  /** Every field of this customer's was `protected`: Art. 34(3)(a) applies to them. */
  readonly art34_3_a: boolean;
}

export interface BlastRadiusReport {
  readonly actor: ActorRef;
  /** The audit actors the actor stands for (a source: the actors seen at that address). */
  readonly actors: readonly string[];
  readonly from: string;
  readonly to: string;
  readonly computed_at: string;
  readonly exposure: Exposure;
  readonly keys: KeyFacts;
  readonly totals: {
    readonly entries: number;
    readonly touching_entries: number;
    readonly refused_entries: number;
    readonly customers: number;
    readonly records: number;
    readonly card_records_without_customer: number;
    readonly customers_exposed: number;
    readonly customers_art34_3_a: number;
  };
  /**
   * True when the stored data was reached and some of it is readable there (stored in clear, or
   * its keys exposed): then every stored customer is concerned, not only those the actor touched.
   */
  readonly all_stored_customers: boolean;
  readonly categories: readonly CategoryReport[];
  readonly fields: readonly FieldReport[];
  readonly actions: readonly { action: string; outcome: string; entries: number }[];
  readonly cards: { readonly involved: boolean; readonly records: number; readonly reveals: number; readonly relays: number; readonly brands: Readonly<Record<string, number>> };
  readonly customers: readonly CustomerReport[];
}

const RANK: Record<Decision, number> = { protected: 0, masked: 1, exposed: 2 };
const worst = (a: Decision, b: Decision): Decision => (RANK[a] >= RANK[b] ? a : b);

export function buildReport(input: {
  inventory: Inventory;
  activity: Activity;
  actor: ActorRef;
  actors: readonly string[];
  from: string;
  to: string;
  now: Date;
  exposure: Exposure;
  keys: KeyFacts;
  /** Card brands → cards: of the tokens touched, or of every stored card when the stored data was reached. */
  brands: Readonly<Record<string, number>>;
}): BlastRadiusReport {
  const { inventory, activity, exposure, keys } = input;
  // Decisions depend on (at rest, touch bits) alone: a handful of pairs, however many customers.
  const memo = new Map<string, ReturnType<typeof decide>>();
  const decided = (atRest: AtRest, mask: number) => {
    const k = `${atRest}${mask}`;
    let d = memo.get(k);
    if (d === undefined) memo.set(k, (d = decide(atRest, mask, exposure, keys)));
    return d;
  };
  const fields: FieldReport[] = [];
  for (const f of activity.fields.values())
    fields.push({ collection: f.collection, field: f.field, category: f.category, at_rest: f.at_rest, entries: f.entries, customers: f.customers, touches: { ...f.touches }, ...decided(f.at_rest, f.mask) });
  // The stored data was reached: every declared field is concerned, touched by the actor or not.
  if (exposure.database || exposure.host)
    for (const c of inventory.collections.values())
      for (const def of c.fields.values()) {
        if (activity.fields.has(fieldKey({ collection: c.name, field: def.name }))) continue;
        const touches = Object.fromEntries(TOUCHES.map((t) => [t, 0])) as Record<Touch, number>;
        fields.push({ collection: c.name, field: def.name, category: def.category, at_rest: def.protection, entries: 0, customers: 0, touches, ...decided(def.protection, 0) });
      }
  fields.sort((a, b) => a.collection.localeCompare(b.collection) || a.field.localeCompare(b.field));
  const allStored = fields.some((f) => f.reason === 'stored_in_clear' || f.reason === 'keys_exposed');

  const byCategory = new Map<string, { fields: string[]; customers: number; entries: number; decision: Decision }>();
  for (const f of fields) {
    const c = byCategory.get(f.category) ?? { fields: [], customers: 0, entries: 0, decision: 'protected' as Decision };
    c.fields.push(`${f.collection}.${f.field}`);
    c.entries += f.entries;
    c.decision = worst(c.decision, f.decision);
    byCategory.set(f.category, c);
  }

  const customers: CustomerReport[] = [];
  let exposedCustomers = 0;
  for (const c of activity.customers.values()) {
    const exposed: string[] = [];
    const categories = new Set<string>();
    for (const [key, mask] of c.fields) {
      const f = activity.fields.get(key)!;
      categories.add(f.category);
      if (decided(f.at_rest, mask).decision !== 'protected') exposed.push(key);
    }
    for (const category of categories) byCategory.get(category)!.customers += 1;
    if (exposed.length > 0 || allStored) exposedCustomers += 1;
    customers.push({
      customer_id: c.customer_id,
      entries: c.entries,
      records: c.records,
      first_at: c.first_at,
      last_at: c.last_at,
      fields: [...c.fields.keys()].sort(),
      exposed_fields: exposed.sort(),
      art34_3_a: exposed.length === 0 && !allStored,
    });
  }
  customers.sort((a, b) => (a.customer_id < b.customer_id ? -1 : a.customer_id > b.customer_id ? 1 : 0));

  const cardFields = fields.filter((f) => f.collection === 'cards' && f.entries > 0);
  return {
    actor: input.actor,
    actors: input.actors,
    from: input.from,
    to: input.to,
    computed_at: input.now.toISOString(),
    exposure,
    keys,
    totals: {
      entries: activity.entries,
      touching_entries: activity.touching,
      refused_entries: activity.refused,
      customers: activity.customers.size,
      records: activity.records,
      card_records_without_customer: activity.card_records_without_customer,
      customers_exposed: exposedCustomers,
      customers_art34_3_a: activity.customers.size - exposedCustomers,
    },
    all_stored_customers: allStored,
    categories: [...byCategory.entries()]
      .map(([category, c]) => ({ category, fields: c.fields, customers: c.customers, entries: c.entries, decision: c.decision }))
      .sort((a, b) => a.category.localeCompare(b.category)),
    fields,
    actions: [...activity.actions.entries()]
      .flatMap(([action, outcomes]) => [...outcomes.entries()].map(([outcome, entries]) => ({ action, outcome, entries })))
      .sort((a, b) => a.action.localeCompare(b.action) || a.outcome.localeCompare(b.outcome)),
    cards: {
      // Stored data reached: the cards stored count (their brands are given for every stored card then).
      involved: cardFields.length > 0 || activity.card_reveals > 0 || activity.card_relays > 0 || ((exposure.database || exposure.host) && Object.values(input.brands).some((n) => n > 0)),
      records: activity.card_records,
      reveals: activity.card_reveals,
      relays: activity.card_relays,
      brands: input.brands,
    },
    customers,
  };
}
