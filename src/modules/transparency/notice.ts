import type { Inventory, LegalBasis, NoticeLanguage, Retention } from '../inventory/index.ts';
import type { Processor } from '../processors/service.ts';
import { csvLine } from '../../kernel/csv.ts';
import { retentionInWords, retentionText, TEXTS } from './texts.ts';

/**
 * The privacy notice, the record of processing activities and the data map, generated from what
 * is declared — the inventory, the processor registry and the controller settings — so that what
 * the shop tells customers and what Custos releases cannot drift apart (GDPR Art. 13, 30(1)).
 */
export interface Controller {
  readonly name: string;
  readonly address: string | undefined;
  readonly privacyContact: string | undefined;
  readonly dpoContact: string | undefined;
}

export interface Sources {
  readonly inventory: Inventory;
  /** All recipients, past ones included. */
  readonly recipients: readonly Processor[];
  readonly controller: Controller;
}

/** What the generated documents are built from, read now (the registry changes at run time). */
export async function sourcesOf(r: { inventory: Inventory; processors: { list(o: { all: boolean }): Promise<Processor[]> }; config: { controller: Controller } }): Promise<Sources> {
  return { inventory: r.inventory, recipients: await r.processors.list({ all: true }), controller: r.config.controller };
}

/** EEA countries (EU + IS, LI, NO): transfers elsewhere need a safeguard (GDPR Art. 44-46). */
const EEA = new Set('AT BE BG HR CY CZ DK EE FI FR DE GR HU IE IT LV LT LU MT NL PL PT RO SK SI ES SE IS LI NO'.split(' '));

function usesOf(inventory: Inventory, purpose: string) {
  const fields: { field: string; category: string; retention: Retention; basis: LegalBasis }[] = [];
  for (const c of inventory.collections.values())
    for (const f of c.fields.values()) {
      const use = f.purposes.get(purpose);
      if (use !== undefined) fields.push({ field: c.name === 'customers' ? f.name : `${c.name}.${f.name}`, category: f.category, retention: f.retention, basis: use.basis });
    }
  return fields;
}

export function privacyNotice(src: Sources, version: number, lang: NoticeLanguage) {
  const t = TEXTS[lang];
  const current = src.recipients.filter((r) => r.removed_at === null);
  const recipient = (r: Processor) => ({
    name: r.name,
    role: r.role,
    role_text: t.roles[r.role],
    purposes: r.purposes,
    categories: r.categories,
    country: r.country,
    safeguard: r.safeguard,
    safeguard_text: r.safeguard === null ? null : t.safeguards[r.safeguard],
    outside_eea: !EEA.has(r.country),
  });
  return {
    version,
    language: lang,
    title: t.title,
    controller: { name: src.controller.name, address: src.controller.address ?? null, privacy_contact: src.controller.privacyContact ?? null, dpo_contact: src.controller.dpoContact ?? null },
    purposes: [...src.inventory.purposes.values()].map((p) => {
      const uses = usesOf(src.inventory, p.name);
      return {
        purpose: p.name,
        description: p.descriptions[lang],
        legal_bases: [...p.bases],
        legal_basis_text: p.bases.map((b) => t.bases[b]),
        consent_based: p.consentBased,
        sale_or_sharing: p.saleOrSharing,
        fields: uses.map((u) => u.field),
        categories: [...new Set(uses.map((u) => u.category))].sort(),
        retention: [...new Set(uses.map((u) => retentionInWords(u.retention, t)))],
        recipients: current.filter((r) => r.purposes.includes(p.name)).map((r) => r.name),
      };
    }),
    recipients: current.map(recipient),
    past_recipients: src.recipients.filter((r) => r.removed_at !== null).map((r) => ({ ...recipient(r), ended: r.removed_at })),
    rights: [...t.rightsText, t.consentText, t.complaint],
    gpc: t.gpcText,
  };
}
export type PrivacyNotice = ReturnType<typeof privacyNotice>;

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

/** The notice as a readable page (its stylesheet is served beside it, allowed by the page's CSP). */
export function noticeHtml(n: PrivacyNotice): string {
  const t = TEXTS[n.language];
  const li = (items: readonly string[]) => `<ul>${items.map((i) => `<li>${esc(i)}</li>`).join('')}</ul>`;
  const c = n.controller;
  const controller = [c.name, c.address, c.privacy_contact === null ? null : `${t.contact}: ${c.privacy_contact}`, c.dpo_contact === null ? null : `${t.dpo}: ${c.dpo_contact}`]
    .filter((x): x is string => x !== null)
    .map((x) => `<p>${esc(x)}</p>`)
    .join('');
  const purposes = n.purposes
    .map(
      (p) =>
        `<section><h3>${esc(p.description)}</h3><dl><dt>${esc(t.data)}</dt><dd>${esc(p.fields.join(', '))}</dd><dt>${esc(t.basis)}</dt><dd>${esc(p.legal_basis_text.join('; '))}</dd><dt>${esc(t.retention)}</dt><dd>${esc(p.retention.join('; '))}</dd>${p.recipients.length > 0 ? `<dt>${esc(t.recipients)}</dt><dd>${esc(p.recipients.join(', '))}</dd>` : ''}</dl></section>`,
    )
    .join('');
  const recipient = (r: PrivacyNotice['recipients'][number]) => `${r.name} (${r.role_text}; ${r.country}${r.safeguard_text === null ? '' : `; ${r.safeguard_text}`}): ${r.purposes.join(', ')}`;
  return `<!doctype html><html lang="${n.language}"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1"><title>${esc(t.title)}</title><link rel="stylesheet" href="/v1/privacy-notice.css"></head><body><main>
<h1>${esc(t.title)}</h1><p class="version">${esc(t.version)} ${n.version}</p>
<h2>${esc(t.controller)}</h2>${controller}
<h2>${esc(t.purposes)}</h2>${purposes}
<h2>${esc(t.recipients)}</h2>${n.recipients.length === 0 ? `<p>${esc(t.noRecipients)}</p>` : li(n.recipients.map(recipient))}
${n.past_recipients.length === 0 ? '' : `<h2>${esc(t.pastRecipients)}</h2>${li(n.past_recipients.map((r) => `${recipient(r)} (${(r.ended ?? '').slice(0, 10)})`))}`}
<h2>${esc(t.rights)}</h2>${li(n.rights)}<p>${esc(n.gpc)}</p>
</main></body></html>`;
}

export const NOTICE_CSS = `body{font:16px/1.5 system-ui,sans-serif;margin:0;color:#1d1d1f;background:#fff}main{max-width:44rem;margin:0 auto;padding:2rem 1rem}h1{font-size:1.8rem}h2{font-size:1.3rem;margin-top:2rem;border-bottom:1px solid #ddd}h3{font-size:1.05rem}dt{font-weight:600}dd{margin:0 0 .5rem 0}.version{color:#666}`;

/** The record of processing activities, one entry per purpose (GDPR Art. 30(1)(a)-(g)). */
export function ropa(src: Sources) {
  const t = TEXTS.en;
  const current = src.recipients.filter((r) => r.removed_at === null);
  const protections = new Set([...src.inventory.collections.values()].flatMap((c) => [...c.fields.values()].map((f) => f.protection)));
  return [...src.inventory.purposes.values()].map((p) => {
    const uses = usesOf(src.inventory, p.name);
    const recipients = current.filter((r) => r.purposes.includes(p.name));
    return {
      controller: src.controller.name,
      controller_contact: src.controller.privacyContact ?? null,
      dpo_contact: src.controller.dpoContact ?? null,
      purpose: p.name,
      description: p.description,
      legal_bases: [...p.bases],
      data_subjects: ['customers'],
      data_categories: [...new Set(uses.map((u) => u.category))].sort(),
      recipients: recipients.map((r) => `${r.name} (${r.role}, ${r.country})`),
      third_country_transfers: recipients.filter((r) => !EEA.has(r.country)).map((r) => `${r.country}: ${r.safeguard ?? 'no safeguard recorded'}`),
      erasure_time_limits: [...new Set(uses.map((u) => retentionInWords(u.retention, t)))],
      security_measures: [
        'AES-256-GCM per-customer data keys under versioned key-encryption keys',
        ...(protections.has('searchable') ? ['keyed blind indexes (HMAC-SHA256) for searchable fields'] : []),
        'purpose-bound release with masking; every access in a hash-chained, signed audit log',
      ],
    };
  });
}

export function ropaCsv(rows: ReturnType<typeof ropa>): string {
  const cols = Object.keys(rows[0] ?? {}) as (keyof ReturnType<typeof ropa>[number])[];
  // Lists as one cell, joined; every cell quoted and formula-safe (kernel/csv.ts).
  const cell = (v: unknown) => (Array.isArray(v) ? v.join('; ') : v === null ? '' : String(v));
  return `${cols.join(',')}\r\n${rows.map((r) => csvLine(cols.map((c) => cell(r[c])))).join('')}`;
}

/** Collections, fields, categories, purposes, legal bases, retention, protection and who receives each field. */
export function dataMap(src: Sources) {
  const current = src.recipients.filter((r) => r.removed_at === null);
  return {
    collections: [...src.inventory.collections.values()].map((c) => ({
      name: c.name,
      fields: [...c.fields.values()].map((f) => ({
        name: f.name,
        category: f.category,
        protection: f.protection,
        retention: retentionText(f.retention),
        purposes: [...f.purposes].map(([purpose, use]) => ({ purpose, basis: use.basis, access: use.access })),
        processors: current.filter((r) => r.categories.includes(f.category) && r.purposes.some((p) => f.purposes.has(p))).map((r) => r.name),
      })),
    })),
  };
}
