import type { Inventory } from '../inventory/index.ts';
import type { Retention } from '../inventory/schema.ts';
import { HOLD_PURPOSE, type CustomerRecordRef } from '../vault/erasure.ts';
import { addDays, addMonths, utcDate } from './deadlines.ts';

/**
 * The erasure plan of one customer, from the inventory, per field: erased now, or held under a
 * cited legal ground until a date (GDPR Art. 17(3)(b)). Held are exactly the fields with a
 * `legal_obligation` use whose retention has not run out; the rest of each record is erased. A
 * record's hold ends as its retention says — `{ period, from: end_of_year }` counts from 31
 * December of the year the record was made (§147(4) AO), with the period of the shop's bookkeeping
 * country where `by_country` names it. A customer-level held field whose retention is
 * `account_lifetime` (the name an invoice is made out to) is held as long as the latest held
 * record of that customer, and erased now when none is held.
 */
export interface PlanHold {
  collection: string;
  record_id: string;
  fields: string[];
  until: string;
  ground: string;
}

export interface ErasurePlan {
  customer_id: string;
  bookkeeping_country: string;
  erase: { collection: string; records: number; fields: string[] }[];
  hold: PlanHold[];
}

const GROUNDS: Readonly<Record<string, string>> = {
  DE: 'GDPR Art. 17(3)(b); bookkeeping records kept under §147 AO and §257 HGB',
  FR: 'GDPR Art. 17(3)(b); commercial records kept under Code de commerce L.123-22',
};
export const groundFor = (country: string) => GROUNDS[country] ?? `GDPR Art. 17(3)(b); bookkeeping law of ${country}`;

/** `date` plus an ISO 8601 duration (years, months, weeks, days). */
export function addDuration(date: string, duration: string): string {
  const m = /^P(?:(\d+)Y)?(?:(\d+)M)?(?:(\d+)W)?(?:(\d+)D)?$/.exec(duration);
  if (m === null) throw new RangeError('not an ISO 8601 duration');
  const months = Number(m[1] ?? 0) * 12 + Number(m[2] ?? 0);
  return addDays(addMonths(date, months), Number(m[3] ?? 0) * 7 + Number(m[4] ?? 0));
}

/** The last day a record may be kept under `retention`, or undefined for `account_lifetime`. */
export function retentionEnd(retention: Retention, createdOn: string, closedOn: string, country: string): string | undefined {
  if (retention === 'account_lifetime') return undefined;
  if (typeof retention === 'string') return addDuration(createdOn, retention);
  const period = retention.by_country?.[country] ?? retention.period;
  const from = retention.from === 'end_of_year' ? `${createdOn.slice(0, 4)}-12-31` : retention.from === 'created' ? createdOn : closedOn;
  return addDuration(from, period);
}

export function erasurePlan(inventory: Inventory, customerId: string, records: readonly CustomerRecordRef[], now: Date, country: string): ErasurePlan {
  const today = utcDate(now);
  const ground = groundFor(country);
  const hold: PlanHold[] = [];
  const lifetimeHolds: { collection: string; record_id: string; fields: string[] }[] = [];
  const erased = new Map<string, { records: number; fields: Set<string> }>();
  for (const record of records) {
    const collection = inventory.collections.get(record.collection);
    if (collection === undefined) continue;
    const held: string[] = [];
    const lifetime: string[] = [];
    let until: string | undefined;
    for (const field of collection.fields.values()) {
      if (!field.purposes.has(HOLD_PURPOSE)) continue;
      const end = retentionEnd(field.retention, record.created_at.slice(0, 10), today, country);
      if (end === undefined) lifetime.push(field.name);
      else if (end > today) {
        held.push(field.name);
        if (until === undefined || end > until) until = end;
      }
    }
    if (held.length > 0 && until !== undefined) hold.push({ collection: record.collection, record_id: record.id, fields: held.sort(), until, ground });
    if (lifetime.length > 0) lifetimeHolds.push({ collection: record.collection, record_id: record.id, fields: lifetime.sort() });
    const entry = erased.get(record.collection) ?? { records: 0, fields: new Set<string>() };
    entry.records++;
    for (const field of collection.fields.keys()) if (!held.includes(field)) entry.fields.add(field);
    erased.set(record.collection, entry);
  }
  const latest = hold.reduce<string | undefined>((max, h) => (max === undefined || h.until > max ? h.until : max), undefined);
  if (latest !== undefined)
    for (const l of lifetimeHolds) {
      hold.unshift({ ...l, until: latest, ground });
      for (const f of l.fields) erased.get(l.collection)?.fields.delete(f);
    }
  return {
    customer_id: customerId,
    bookkeeping_country: country,
    erase: [...erased].map(([collection, e]) => ({ collection, records: e.records, fields: [...e.fields].sort() })),
    hold,
  };
}
