import { Readable } from 'node:stream';
import yazl from 'yazl';
import { csvLine } from '../../kernel/csv.ts';
import { provenEntryView } from '../audit/routes.ts';
import type { AuditRecord, EntryProofs } from '../audit/service.ts';
import type { SignedTreeHead } from '../audit/tree-head.ts';
import type { CardView } from '../cards/service.ts';
import type { ConsentState } from '../consent/service.ts';
import type { CollectionDef, Inventory } from '../inventory/index.ts';
import type { Processor } from '../processors/service.ts';
import type { Controller } from '../transparency/notice.ts';
import { retentionInWords, retentionText, TEXTS } from '../transparency/texts.ts';
import type { Collection, RecordView } from '../vault/service.ts';

/**
 * The customer's access and portability export (GDPR Art. 15(1)-(3), 20(1)), generated from the
 * inventory: every record of every collection about the customer with exactly the fields the
 * inventory marks `export: true`, their consents with the whole history, their access log, the
 * purposes and legal bases, the recipients (processor registry, past ones included), the
 * retention periods and the sources their records came from. One ZIP holds `export.json` (one
 * structured document, Art. 20's "structured, commonly used and machine-readable format") and
 * `csv/<collection>.csv` (one file per collection). The ZIP is written as it is read (yazl):
 * records come page by page from the database, so memory stays flat whatever the customer holds.
 */
export const EXPORT_FORMAT = 'custos-export/1';
/** Records read per page. */
export const EXPORT_PAGE = 500;
const VAULT_COLLECTIONS: readonly Collection[] = ['customers', 'addresses', 'orders'];
const CARDS = 'cards';

export type ExportCard = CardView & { created_at: string };

/** Where the export reads from; each read is the owning capability's own (audited there). */
export interface ExportSources {
  readonly inventory: Inventory;
  readonly controller: Controller;
  page(collection: Collection, after: string | undefined, limit: number): Promise<RecordView[]>;
  cards(): Promise<ExportCard[]>;
  consents(): Promise<ConsentState>;
  /** The access log, newest first, before entry id `before`. */
  accessLog(before: number | undefined, limit: number): Promise<AuditRecord[]>;
  /** Inclusion proofs of access-log entries against the newest signed tree head (audit's `proofs`). */
  proofs(entryIds: readonly number[]): Promise<EntryProofs>;
  recipients(): Promise<Processor[]>;
}

export interface ExportMeta {
  readonly requestId: string;
  readonly kind: string;
  readonly customerId: string;
  readonly generatedAt: Date;
}

/** Who wrote a customer's records: one line per collection, channel and actor (Art. 15(1)(g)). */
type Source = {
  collection: string;
  channel: 'shop_system' | 'customer' | 'shop_staff' | 'custos';
  actor: string;
  writes: number;
  first_at: string;
  last_at: string;
};

const channelOf = (actor: string): Source['channel'] =>
  actor.startsWith('apikey:') ? 'shop_system' : actor.startsWith('customer:') ? 'customer' : actor.startsWith('staff:') ? 'shop_staff' : 'custos';

function tally(sources: Map<string, Source>, e: AuditRecord): void {
  if ((e.action !== 'vault.create' && e.action !== 'vault.update') || e.outcome !== 'success' || e.collection === null) return;
  const channel = channelOf(e.actor);
  const actor = channel === 'customer' ? 'customer' : e.actor;
  const key = `${e.collection}\u0000${actor}`;
  const s = sources.get(key);
  if (s === undefined) sources.set(key, { collection: e.collection, channel, actor, writes: 1, first_at: e.at, last_at: e.at });
  else {
    s.writes++;
    if (e.at < s.first_at) s.first_at = e.at;
    if (e.at > s.last_at) s.last_at = e.at;
  }
}

interface Column {
  readonly name: string;
  get(record: Record<string, unknown>): unknown;
}

/** A collection's CSV columns: id and times, then each exported field; object fields one column per part, lists as JSON. */
function columnsOf(c: CollectionDef, lead: readonly string[]): Column[] {
  const cols: Column[] = lead.map((name) => ({ name, get: (r) => r[name] }));
  for (const f of c.fields.values()) {
    if (!f.export) continue;
    if (f.type === 'object' && f.fields !== undefined)
      for (const sub of Object.keys(f.fields)) cols.push({ name: `${f.name}.${sub}`, get: (r) => (r[f.name] as Record<string, unknown> | undefined)?.[sub] });
    else if (f.type === 'list') cols.push({ name: f.name, get: (r) => (r[f.name] === undefined ? undefined : JSON.stringify(r[f.name])) });
    else cols.push({ name: f.name, get: (r) => r[f.name] });
  }
  return cols;
}

const cellOf = (v: unknown) => (v === undefined || v === null ? null : typeof v === 'object' ? JSON.stringify(v) : (v as string | number | boolean));
const rowOf = (cols: readonly Column[], r: Record<string, unknown>) => csvLine(cols.map((c) => cellOf(c.get(r))));
const header = (cols: readonly Column[]) => csvLine(cols.map((c) => c.name));

const cardRecord = (card: ExportCard, c: CollectionDef): Record<string, unknown> => {
  const out: Record<string, unknown> = { id: card.token, created_at: card.created_at, brand: card.brand, bin: card.bin, last4: card.last4 };
  for (const f of c.fields.values()) if (f.export && (card as unknown as Record<string, unknown>)[f.name] !== undefined) out[f.name] = (card as unknown as Record<string, unknown>)[f.name];
  return out;
};

async function* vaultRecords(src: ExportSources, collection: Collection): AsyncGenerator<RecordView[]> {
  let after: string | undefined;
  for (;;) {
    const page = await src.page(collection, after, EXPORT_PAGE);
    if (page.length === 0) return;
    yield page;
    if (page.length < EXPORT_PAGE) return;
    after = page.at(-1)!.id;
  }
}

async function* accessLog(src: ExportSources): AsyncGenerator<AuditRecord[]> {
  let before: number | undefined;
  for (;;) {
    const page = await src.accessLog(before, 1000);
    if (page.length === 0) return;
    yield page;
    before = page.at(-1)!.id;
  }
}

const accessEntry = (e: AuditRecord) => ({ id: e.id, at: e.at, actor: e.actor, action: e.action, collection: e.collection, record_id: e.recordId, fields: e.fields, purpose: e.purpose, outcome: e.outcome });

function purposesOf(inventory: Inventory, consents: ConsentState) {
  return [...inventory.purposes.values()].map((p) => {
    const fields: string[] = [];
    for (const c of inventory.collections.values()) for (const f of c.fields.values()) if (f.purposes.has(p.name)) fields.push(`${c.name}.${f.name}`);
    const consent = consents.purposes.find((s) => s.purpose === p.name);
    return { purpose: p.name, description: p.description, legal_bases: [...p.bases], consent_based: p.consentBased, consent_in_force: consent === undefined ? null : consent.in_force, fields };
  });
}

function retentionOf(inventory: Inventory) {
  const out: { collection: string; field: string; retention: string; in_words: string }[] = [];
  for (const c of inventory.collections.values())
    for (const f of c.fields.values()) out.push({ collection: c.name, field: f.name, retention: retentionText(f.retention), in_words: retentionInWords(f.retention, TEXTS.en) });
  return out;
}

const recipientOf = (r: Processor) => ({ name: r.name, role: r.role, country: r.country, safeguard: r.safeguard, purposes: r.purposes, categories: r.categories, since: r.added_at, until: r.removed_at });

function withheldOf(inventory: Inventory) {
  const out: { collection: string; field: string; reason: string }[] = [];
  for (const c of inventory.collections.values())
    for (const f of c.fields.values())
      if (!f.export)
        out.push({
          collection: c.name,
          field: f.name,
          reason: c.name === CARDS ? 'never released (PCI DSS 3.4.1); the card is shown by brand, BIN and last four digits' : "the shop's data inventory leaves it out of exports",
        });
  return out;
}

const README = (meta: ExportMeta, shop: string) =>
  [
    `Your data held by ${shop}`,
    '',
    `Made ${meta.generatedAt.toISOString()} for data-subject request ${meta.requestId} (${meta.kind}).`,
    '',
    'export.json  everything in one structured document: your records by collection, your consents and',
    '             their history, who accessed your data and why, the purposes and legal bases, who',
    '             receives data, how long each field is kept, and where your records came from.',
    '             Each access-log entry carries its inclusion proof in the shop\'s signed audit log',
    '             (access_log_heads holds the signed tree heads; the keys are at /v1/keys/audit).',
    'csv/         the same, one CSV file per collection (UTF-8, comma-separated, every cell quoted; a',
    "             cell starting with = + - @ gets a leading ' so a spreadsheet shows it as text).",
    '',
  ].join('\r\n');

/** The export as a ZIP stream; nothing is read before the stream is. */
export function exportZip(src: ExportSources, meta: ExportMeta): Readable {
  const zip = new yazl.ZipFile();
  const options = { mtime: meta.generatedAt, compress: true };
  const sources = new Map<string, Source>();
  let tallied = false;
  const add = (name: string, produce: () => AsyncGenerator<string>) =>
    zip.addReadStreamLazy(name, options, (cb) => cb(null, Readable.from((async function* () {
      for await (const chunk of produce()) yield Buffer.from(chunk, 'utf8');
    })(), { objectMode: false })));
  const { inventory } = src;
  const col = (name: string) => inventory.collections.get(name)!;
  let consents: Promise<ConsentState> | undefined;
  const consentState = () => (consents ??= src.consents());

  zip.addBuffer(Buffer.from(README(meta, src.controller.name), 'utf8'), 'README.txt', options);
  add('export.json', async function* () {
    const head = { format: EXPORT_FORMAT, generated_at: meta.generatedAt.toISOString(), request: { id: meta.requestId, kind: meta.kind }, customer_id: meta.customerId };
    const controller = { name: src.controller.name, address: src.controller.address ?? null, privacy_contact: src.controller.privacyContact ?? null, dpo_contact: src.controller.dpoContact ?? null };
    yield `${JSON.stringify(head).slice(0, -1)},"controller":${JSON.stringify(controller)},"collections":{`;
    for (const [i, name] of VAULT_COLLECTIONS.entries()) {
      yield `${i === 0 ? '' : ','}\n"${name}":[`;
      let first = true;
      for await (const page of vaultRecords(src, name)) {
        yield page.map((r, i) => `${first && i === 0 ? '' : ','}\n${JSON.stringify(r)}`).join('');
        first = false;
      }
      yield ']';
    }
    yield `,\n"${CARDS}":[${(await src.cards()).map((card) => `\n${JSON.stringify(cardRecord(card, col(CARDS)))}`).join(',')}]}`;
    yield `,\n"withheld_fields":${JSON.stringify(withheldOf(inventory))}`;
    const state = await consentState();
    yield `,\n"consents":${JSON.stringify({ purposes: state.purposes, history: state.history, gpc: state.gpc })}`;
    // Each entry as GET /v1/me/access-log shows it: its leaf's columns, the withheld hash and its
    // inclusion proof (null while it waits for the next head), checked against the signed head
    // of `access_log_heads` with the proof's tree_size (one head unless a new one was signed
    // while the export was read).
    yield ',\n"access_log":[';
    let first = true;
    const heads = new Map<number, SignedTreeHead>();
    for await (const page of accessLog(src)) {
      for (const e of page) tally(sources, e);
      const { head, proofs } = await src.proofs(page.map((e) => e.id));
      if (head !== null) heads.set(head.tree_size, head);
      yield page.map((e, i) => `${first && i === 0 ? '' : ','}\n${JSON.stringify(provenEntryView({ ...e, proof: proofs.get(e.id) ?? null }))}`).join('');
      first = false;
    }
    tallied = true;
    yield `],\n"access_log_heads":${JSON.stringify([...heads.values()])}`;
    yield `,\n"purposes":${JSON.stringify(purposesOf(inventory, state))}`;
    yield `,\n"recipients":${JSON.stringify((await src.recipients()).map(recipientOf))}`;
    yield `,\n"retention":${JSON.stringify(retentionOf(inventory))}`;
    yield `,\n"sources":${JSON.stringify([...sources.values()])}\n}\n`;
  });

  for (const name of VAULT_COLLECTIONS)
    add(`csv/${name}.csv`, async function* () {
      const cols = columnsOf(col(name), name === 'customers' ? ['id', 'created_at', 'updated_at'] : ['id', 'customer_id', 'created_at', 'updated_at']);
      yield header(cols);
      for await (const page of vaultRecords(src, name)) yield page.map((r) => rowOf(cols, r)).join('');
    });
  add(`csv/${CARDS}.csv`, async function* () {
    const cols = columnsOf(col(CARDS), ['id', 'created_at', 'brand', 'bin', 'last4']);
    yield header(cols);
    for (const card of await src.cards()) yield rowOf(cols, cardRecord(card, col(CARDS)));
  });
  const table = <T extends Record<string, unknown>>(name: string, names: readonly (keyof T & string)[], rows: () => Promise<T[]> | AsyncGenerator<T[]>) =>
    add(`csv/${name}.csv`, async function* () {
      const cols: Column[] = names.map((n) => ({ name: n, get: (r) => (Array.isArray(r[n]) ? (r[n] as unknown[]).join('; ') : r[n]) }));
      yield header(cols);
      const got = rows();
      if (Symbol.asyncIterator in got) for await (const page of got) yield page.map((r) => rowOf(cols, r)).join('');
      else yield (await got).map((r) => rowOf(cols, r)).join('');
    });
  table('consents', ['id', 'purpose', 'status', 'source', 'notice_version', 'recorded_at', 'actor', 'proof_text_sha256', 'proof_channel', 'proof_at'], async () =>
    (await consentState()).history.map((h) => ({ ...h, proof_text_sha256: h.proof?.text_sha256, proof_channel: h.proof?.channel, proof_at: h.proof?.at })),
  );
  table('access_log', ['id', 'at', 'actor', 'action', 'collection', 'record_id', 'fields', 'purpose', 'outcome'], async function* () {
    for await (const page of accessLog(src)) yield page.map(accessEntry);
  });
  table('purposes', ['purpose', 'description', 'legal_bases', 'consent_based', 'consent_in_force', 'fields'], async () => purposesOf(inventory, await consentState()));
  table('recipients', ['name', 'role', 'country', 'safeguard', 'purposes', 'categories', 'since', 'until'], async () => (await src.recipients()).map(recipientOf));
  table('retention', ['collection', 'field', 'retention', 'in_words'], async () => retentionOf(inventory));
  table('sources', ['collection', 'channel', 'actor', 'writes', 'first_at', 'last_at'], async () => {
    // export.json, written first, counted them while it read the access log.
    if (!tallied) for await (const page of accessLog(src)) for (const e of page) tally(sources, e);
    return [...sources.values()];
  });
  zip.end();
  const out = zip.outputStream as Readable;
  zip.on('error', (error: Error) => out.destroy(error));
  return out;
}
