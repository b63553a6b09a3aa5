import { randomInt } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../kernel/clock.ts';
import type { SecurityEvent } from '../../kernel/security-events.ts';
import type { Dialect } from '../../store/database.ts';
import type { Database } from '../../store/schema.ts';
import type { ApiKeyService } from '../apikeys/service.ts';
import { detectBrand, luhnCheckDigit } from '../cards/card-rules.ts';
import type { CardService } from '../cards/service.ts';
import type { Inventory } from '../inventory/index.ts';
import type { Actor } from '../policy/service.ts';
import type { VaultService } from '../vault/service.ts';
import { changeShared } from './state.ts';

/**
 * Honeytokens: decoy customers (stored through the vault like any customer, with an address),
 * decoy cards (through the card vault, linked to a decoy customer) and a decoy API key, which no
 * legitimate flow touches. They get no consent (so no audience, export or mail ever includes them)
 * and the decoy key may state no purpose (using it authenticates, and releases nothing). Any event
 * that names one — a read, a lookup that found one, a card read or relay, the key's use — by anyone
 * but the system's own jobs (actor `system…`) and the CLI raises the critical `honeytoken` alert.
 */
export type HoneytokenKind = 'customer' | 'card' | 'apikey';

export interface PlantResult {
  readonly customers: { id: string }[];
  readonly cards: { token: string }[];
  readonly api_key: { id: string; name: string; secret: string };
}

export interface Honeytokens {
  /** The decoy an event names, if any (the caller leaves out exempt actors). */
  match(e: SecurityEvent): { kind: HoneytokenKind; ref: string } | undefined;
  /** Whether this API key id is a planted decoy (posture leaves decoys out of its unused-key check). */
  isDecoyApiKey(id: string): boolean;
  reload(): Promise<void>;
  plant(input: { customers: number; cards: number; emailDomain: string }): Promise<PlantResult>;
}

const FIRST = ['Lena', 'Jonas', 'Marie', 'Felix', 'Sophie', 'Lukas', 'Emma', 'Paul', 'Clara', 'Elias', 'Hannah', 'Noah', 'Julia', 'Tom', 'Laura', 'Ben'];
const LAST = ['Hoffmann', 'Becker', 'Schulz', 'Wagner', 'Keller', 'Richter', 'Wolf', 'Neumann', 'Braun', 'Krüger', 'Lange', 'Hartmann', 'Vogel', 'Berger'];
const STREETS = ['Lindenstraße', 'Gartenweg', 'Bahnhofstraße', 'Schillerstraße', 'Am Markt', 'Ringstraße', 'Birkenallee', 'Mühlweg'];
const CITIES: [string, string][] = [
  ['Leipzig', '04'],
  ['Bremen', '28'],
  ['Freiburg im Breisgau', '79'],
  ['Münster', '48'],
  ['Kassel', '34'],
  ['Augsburg', '86'],
];
const KEY_NAMES = ['erp-sync', 'backup-export', 'crm-import', 'reporting-legacy', 'newsletter-sync'];

const pick = <T>(xs: readonly T[]): T => xs[randomInt(xs.length)]!;
const digits = (n: number) => Array.from({ length: n }, () => String(randomInt(10))).join('');
/** ASCII for the email's local part, as people write it. */
const ascii = (s: string) => s.toLowerCase().replace(/ü/g, 'ue').replace(/ö/g, 'oe').replace(/ä/g, 'ae').replace(/ß/g, 'ss');

/** A Luhn-valid card number of a known brand, random beyond its prefix. */
function decoyPan(): string {
  for (;;) {
    const body = randomInt(2) === 0 ? `4${digits(14)}` : `5${randomInt(1, 6)}${digits(13)}`;
    const pan = body + luhnCheckDigit(body);
    if (detectBrand(pan) !== undefined) return pan;
  }
}

export function createHoneytokens(deps: {
  db: Kysely<Database>;
  dialect: Dialect;
  clock: Clock;
  inventory: Inventory;
  vault: Pick<VaultService, 'create'>;
  cards: Pick<CardService, 'tokenise'>;
  apiKeys: Pick<ApiKeyService, 'create'>;
}): Honeytokens {
  const { db, dialect, clock, inventory } = deps;
  let customers = new Set<string>();
  let cards = new Set<string>();
  let apikeys = new Set<string>();

  async function reload(): Promise<void> {
    const rows = await db.selectFrom('detection_honeytokens').select(['kind', 'ref']).execute();
    const of = (kind: HoneytokenKind) => new Set(rows.filter((r) => r.kind === kind).map((r) => r.ref));
    customers = of('customer');
    cards = of('card');
    apikeys = of('apikey');
  }

  /** A decoy customer's values, for the fields the inventory declares. */
  function person(domain: string) {
    const first = pick(FIRST);
    const last = pick(LAST);
    const declared = inventory.collections.get('customers')?.fields;
    const values: Record<string, string> = {
      email: `${ascii(first)}.${ascii(last)}${randomInt(70, 100)}@${domain}`,
      name: `${first} ${last}`,
      phone: `+49151${digits(8)}`,
      locale: 'de-DE',
      date_of_birth: `19${randomInt(60, 100)}-${String(randomInt(1, 13)).padStart(2, '0')}-${String(randomInt(1, 29)).padStart(2, '0')}`,
    };
    const [city, zip] = pick(CITIES);
    const address = { line1: `${pick(STREETS)} ${randomInt(1, 90)}`, city, postal_code: `${zip}${digits(3)}`, country: 'DE' };
    const addressFields = inventory.collections.get('addresses')?.fields;
    return {
      name: values.name!,
      customer: Object.fromEntries(Object.entries(values).filter(([k]) => declared?.has(k) === true)),
      address: addressFields === undefined ? undefined : Object.fromEntries(Object.entries(address).filter(([k]) => addressFields.has(k))),
    };
  }

  return {
    match(e) {
      if (e.actor?.startsWith('apikey:') === true && apikeys.has(e.actor.slice(7))) return { kind: 'apikey', ref: e.actor.slice(7) };
      if (e.subjectId !== undefined && e.subjectId !== null && customers.has(e.subjectId)) return { kind: 'customer', ref: e.subjectId };
      if (e.recordId !== undefined && e.recordId !== null && cards.has(e.recordId)) return { kind: 'card', ref: e.recordId };
      return undefined;
    },

    isDecoyApiKey: (id) => apikeys.has(id),

    reload,

    async plant({ customers: nCustomers, cards: nCards, emailDomain }) {
      const actor: Actor = { ref: 'cli', kind: 'system', purposes: [...inventory.purposes.keys()] };
      const ctx = { actor, purpose: undefined, requestId: 'honeytoken-plant' };
      const planted: { kind: HoneytokenKind; ref: string }[] = [];
      const out: { customers: { id: string }[]; cards: { token: string }[] } = { customers: [], cards: [] };
      const names: string[] = [];
      for (let i = 0; i < nCustomers; i++) {
        const p = person(emailDomain);
        const { id } = await deps.vault.create(ctx, 'customers', undefined, p.customer);
        if (p.address !== undefined && Object.keys(p.address).length > 0) await deps.vault.create(ctx, 'addresses', id, p.address);
        planted.push({ kind: 'customer', ref: id });
        out.customers.push({ id });
        names.push(p.name);
      }
      const year = clock.now().getUTCFullYear();
      for (let i = 0; i < nCards; i++) {
        const owner = out.customers.length === 0 ? undefined : i % out.customers.length;
        const card = await deps.cards.tokenise(
          { actor: { ...actor, purposes: ['payments'] }, purpose: 'payments', requestId: 'honeytoken-plant', clientAddress: 'cli' },
          {
            pan: decoyPan(),
            exp_month: randomInt(1, 13),
            exp_year: year + randomInt(2, 5),
            ...(owner === undefined ? {} : { customer_id: out.customers[owner]!.id, cardholder_name: names[owner]! }),
          },
        );
        planted.push({ kind: 'card', ref: card.token });
        out.cards.push({ token: card.token });
      }
      const name = pick(KEY_NAMES);
      const { key, info } = await deps.apiKeys.create({ name, purposes: [] });
      planted.push({ kind: 'apikey', ref: info.id });
      const at = clock.now().toISOString();
      await changeShared(db, dialect, (tx) => tx.insertInto('detection_honeytokens').values(planted.map((p) => ({ ...p, created_at: at }))).execute());
      await reload();
      return { ...out, api_key: { id: info.id, name, secret: key.reveal() } };
    },
  };
}
