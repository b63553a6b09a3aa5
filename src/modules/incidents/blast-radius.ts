import type { ActivityGroup } from '../audit/activity.ts';
import type { Inventory } from '../inventory/index.ts';

/**
 * An incident's blast radius, from the audit log alone: given the audit actors a compromised
 * credential stands for and a time window, which customers it touched, which fields and data
 * categories, how (in clear, masked, not released, written) and how often. The grouped rows come
 * from src/modules/audit/activity.ts; everything here is counting, so the same rows always give
 * the same answer.
 *
 * How an entry touched a field (`Touch`):
 * - a write (`*.create`, `*.update`, `cards.tokenise`, `cards.delete`): `written`;
 * - `cards.reveal`: the PAN in `clear`; `cards.relay`: `not_released` (the number went to the
 *   payment processor on the allow-list, never to the caller);
 * - any other read: what the inventory gives the entry's purpose for that field — `clear`,
 *   `masked`, or `not_released` (access `none`); an entry without a purpose, or a purpose the
 *   inventory no longer declares for the field, counts as `clear` (the conservative reading).
 * Refused entries (outcome `denied` or `failure`) touched nothing; they are counted apart.
 * Field names of another collection come prefixed (`addresses.city` in a customer read); card
 * entries written before migration 0028 also carry an origin marker (`origin.…`), and a reveal its reason: neither is card data.
 */
export type Touch = 'clear' | 'masked' | 'not_released' | 'written';
export const TOUCHES: readonly Touch[] = ['clear', 'masked', 'not_released', 'written'];
const BIT: Record<Touch, number> = { clear: 1, masked: 2, not_released: 4, written: 8 };
export const touchesIn = (mask: number): Touch[] => TOUCHES.filter((t) => (mask & BIT[t]) !== 0);

/** How a field is kept at rest: the inventory's protection, or what Custos does for data outside the inventory's collections. */
export type AtRest = 'randomised' | 'searchable' | 'plain' | 'undeclared';

export interface FieldRef {
  readonly collection: string;
  readonly field: string;
  readonly category: string;
  readonly at_rest: AtRest;
}

/** Data an entry names by its action rather than by fields: the customer's access log, consent state, records held after erasure. */
const WHOLE_RECORD_ACTIONS: ReadonlyMap<string, FieldRef> = new Map([
  ['audit.read', { collection: 'audit_log', field: 'access_log', category: 'access_log', at_rest: 'plain' }],
  ['consent.read', { collection: 'consent', field: 'state', category: 'consent', at_rest: 'plain' }],
  // Held fields are sealed under a hold key (src/modules/vault/erasure.ts) and released in clear to legal_obligation.
  ['vault.held.read', { collection: 'held_records', field: 'record', category: 'held_records', at_rest: 'randomised' }],
]);
const WRITE = /\.(create|update|tokenise|delete)$/;

export interface FieldTouch extends FieldRef {
  /** Entries that touched the field. */
  entries: number;
  customers: number;
  touches: Record<Touch, number>;
  /** Union of the touch bits over every entry (see `touchesIn`). */
  mask: number;
}

export interface AffectedCustomer {
  readonly customer_id: string;
  entries: number;
  records: number;
  first_at: string;
  last_at: string;
  /** `collection.field` → union of touch bits. */
  readonly fields: Map<string, number>;
}

export interface Activity {
  /** Every entry of the actors in the window (any action, any outcome). */
  entries: number;
  /** Entries that touched customer data. */
  touching: number;
  /** Refused attempts at customer data (outcome denied or failure). */
  refused: number;
  /** Distinct records touched (those the entries name by id; a list of orders names none). */
  records: number;
  /** Card records touched, and those of them that belong to no customer. */
  card_records: number;
  card_records_without_customer: number;
  readonly fields: Map<string, FieldTouch>;
  readonly customers: Map<string, AffectedCustomer>;
  /** action → outcome → entries. */
  readonly actions: Map<string, Map<string, number>>;
  /** Card reveals and relays by the actors (PCI DSS 12.10.1 step). */
  card_reveals: number;
  card_relays: number;
  /** Card tokens touched (for the brands the acquirer step names). */
  readonly card_tokens: Set<string>;
}

export const fieldKey = (f: Pick<FieldRef, 'collection' | 'field'>) => `${f.collection}.${f.field}`;

/** The declared field an entry's field name stands for, or a ref marked undeclared. */
export function resolveField(inventory: Inventory, entryCollection: string, name: string): FieldRef | undefined {
  const dot = name.indexOf('.');
  const prefix = dot > 0 ? name.slice(0, dot) : undefined;
  const [collection, field] = prefix !== undefined && inventory.collections.has(prefix) ? [prefix, name.slice(dot + 1)] : [entryCollection, name];
  if (collection === 'cards' && (field.startsWith('origin.') || field === 'reason')) return undefined;
  const def = inventory.collections.get(collection)?.fields.get(field);
  if (def === undefined) return { collection, field, category: 'undeclared', at_rest: 'undeclared' };
  return { collection, field, category: def.category, at_rest: def.protection };
}

function touchOf(inventory: Inventory, g: ActivityGroup, ref: FieldRef): Touch {
  if (WRITE.test(g.action)) return 'written';
  if (g.action === 'cards.reveal') return 'clear';
  if (g.action === 'cards.relay') return 'not_released';
  if (ref.at_rest === 'undeclared' || g.purpose === null) return 'clear';
  const use = inventory.collections.get(ref.collection)?.fields.get(ref.field)?.purposes.get(g.purpose);
  if (use === undefined) return 'clear';
  return use.access === 'clear' ? 'clear' : use.access === 'masked' ? 'masked' : 'not_released';
}

/** Counts the grouped audit rows of one blast radius. */
export function countActivity(inventory: Inventory, groups: readonly ActivityGroup[]): Activity {
  const a: Activity = {
    entries: 0,
    touching: 0,
    refused: 0,
    records: 0,
    card_records: 0,
    card_records_without_customer: 0,
    fields: new Map(),
    customers: new Map(),
    actions: new Map(),
    card_reveals: 0,
    card_relays: 0,
    card_tokens: new Set(),
  };
  /** What one (collection, action, purpose, outcome, fields) combination touches, worked out once: the log has few of them. */
  interface Slot {
    readonly key: string;
    readonly field: FieldTouch;
    readonly touch: Touch;
    readonly bit: number;
  }
  const combos = new Map<string, readonly Slot[] | null>();
  const slotOf = (ref: FieldRef, touch: Touch): Slot => {
    const key = fieldKey(ref);
    let f = a.fields.get(key);
    if (f === undefined) {
      f = { ...ref, entries: 0, customers: 0, touches: { clear: 0, masked: 0, not_released: 0, written: 0 }, mask: 0 };
      a.fields.set(key, f);
    }
    return { key, field: f, touch, bit: BIT[touch] };
  };
  /** The slots a touching group fills; null for a group that touches no customer data. */
  const comboOf = (g: ActivityGroup): readonly Slot[] | null => {
    const id = `${g.collection ?? ''}\u0000${g.action}\u0000${g.purpose ?? ''}\u0000${g.fields}`;
    let slots = combos.get(id);
    if (slots === undefined) {
      const whole = WHOLE_RECORD_ACTIONS.get(g.action);
      const refs =
        whole !== undefined
          ? [whole]
          : g.collection !== null && inventory.collections.has(g.collection)
            ? (JSON.parse(g.fields) as string[]).map((n) => resolveField(inventory, g.collection!, n)).filter((r) => r !== undefined)
            : [];
      slots = refs.length === 0 ? null : refs.map((ref) => slotOf(ref, touchOf(inventory, g, ref)));
      combos.set(id, slots);
    }
    return slots;
  };
  const records = new Set<string>();
  for (const g of groups) {
    a.entries += g.entries;
    const byOutcome = a.actions.get(g.action) ?? new Map<string, number>();
    byOutcome.set(g.outcome, (byOutcome.get(g.outcome) ?? 0) + g.entries);
    a.actions.set(g.action, byOutcome);
    const data = WHOLE_RECORD_ACTIONS.has(g.action) || (g.collection !== null && inventory.collections.has(g.collection));
    if (!data) continue;
    if (g.outcome !== 'success') {
      a.refused += g.entries;
      continue;
    }
    const slots = comboOf(g);
    if (slots === null || (g.subject_id === null && WHOLE_RECORD_ACTIONS.has(g.action))) continue;
    a.touching += g.entries;
    if (g.action === 'cards.reveal') a.card_reveals += g.entries;
    if (g.action === 'cards.relay') a.card_relays += g.entries;
    if (g.collection === 'cards' && g.record_id !== null) a.card_tokens.add(g.record_id);
    let customer: AffectedCustomer | undefined;
    if (g.subject_id !== null) {
      customer = a.customers.get(g.subject_id);
      if (customer === undefined) {
        customer = { customer_id: g.subject_id, entries: 0, records: 0, first_at: g.first_at, last_at: g.last_at, fields: new Map() };
        a.customers.set(g.subject_id, customer);
      }
      customer.entries += g.entries;
      if (g.first_at < customer.first_at) customer.first_at = g.first_at;
      if (g.last_at > customer.last_at) customer.last_at = g.last_at;
    }
    // A record belongs to one customer (or, a card, to none): counted once, for its customer. Record
    // ids are unique across collections (each collection's ids have their own prefix).
    if (g.record_id !== null) {
      const record = g.record_id;
      if (!records.has(record)) {
        records.add(record);
        if (g.collection === 'cards') a.card_records += 1;
        if (customer !== undefined) customer.records += 1;
        else if (g.collection === 'cards') a.card_records_without_customer += 1;
      }
    }
    for (const slot of slots) {
      const f = slot.field;
      f.entries += g.entries;
      f.touches[slot.touch] += g.entries;
      f.mask |= slot.bit;
      if (customer !== undefined) customer.fields.set(slot.key, (customer.fields.get(slot.key) ?? 0) | slot.bit);
    }
  }
  a.records = records.size;
  // Customers per field, from each customer's own fields (one count per customer, however many entries).
  for (const c of a.customers.values()) for (const key of c.fields.keys()) a.fields.get(key)!.customers += 1;
  return a;
}
