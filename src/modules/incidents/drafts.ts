import { REASON_WORDS, type Exposure } from './protection.ts';
import type { BlastRadiusReport } from './report.ts';
import { toHtml, toMarkdown, type Block } from './render.ts';
import type { IncidentView } from './view.ts';

/**
 * Drafts for the two notices a breach may need, in Markdown and HTML from one text:
 * - to the supervisory authority, with the contents GDPR Art. 33(3) asks for: (a) the nature of
 *   the breach, the categories and approximate numbers of data subjects and of records, (b) the
 *   DPO's or another contact point's name and contact details, (c) the likely consequences,
 *   (d) the measures taken or proposed; the reasons for a delay past 72 hours (Art. 33(1)); and
 *   the Art. 34(3)(a) assessment per field (protection.ts);
 * - to the affected customers (Art. 34(2): clear and plain language, with (b), (c) and (d)).
 * Card incidents add the step of notifying the acquirer and the card brands (PCI DSS 4.0.1
 * 12.10.1). What Custos cannot know is marked `[to complete: …]`. The customer notice names no
 * customer: it is one text for all of them, sent by the shop through its own channel to the ids in
 * the export's affected list.
 */
export interface Controller {
  readonly name: string;
  readonly address: string | undefined;
  readonly dpoContact: string | undefined;
  readonly privacyContact: string | undefined;
}

export interface DraftText {
  readonly markdown: string;
  readonly html: string;
}

export interface Drafts {
  readonly authority: DraftText;
  readonly customers: DraftText;
}

const TODO = (what: string) => `[to complete: ${what}]`;

/** What customers understand a category to be; unknown (a shop's own) categories by name. */
const CATEGORY_WORDS: Readonly<Record<string, string>> = {
  contact: 'contact details (email address, phone number)',
  identity: 'name',
  location: 'postal addresses',
  demographic: 'date of birth',
  preference: 'language and preferences',
  transaction: 'order history',
  financial: 'order amounts',
  payment_card: 'payment card details',
  access_log: 'the record of who accessed your data',
  consent: 'your consent choices',
  held_records: 'invoices kept for bookkeeping law',
  undeclared: 'other data',
};
const CONSEQUENCES: Readonly<Record<string, string>> = {
  contact: 'phishing and unsolicited contact in the shop’s name',
  identity: 'impersonation, especially combined with other data',
  location: 'unwanted mail or visits, parcel fraud',
  demographic: 'identity fraud where the date of birth serves as a check',
  payment_card: 'fraudulent card payments',
  transaction: 'disclosure of purchasing habits; scams that cite real orders',
  financial: 'disclosure of spending; scams that cite real amounts',
};
const ADVICE: Readonly<Record<string, string>> = {
  contact: 'Be wary of emails, text messages or calls that claim to come from us and ask for a password or payment details: we never ask for them.',
  identity: 'Be alert to accounts opened or purchases made in your name.',
  demographic: 'Be alert to anyone using your date of birth to pass as you with banks or other services.',
  location: 'Be wary of unexpected parcels or letters that ask you to pay or to call a number.',
  payment_card: 'Check your card statements and tell your bank at once about any payment you do not recognise; your bank can block and replace the card.',
  transaction: 'Be wary of messages that mention your orders to gain your trust.',
  financial: 'Be wary of messages that mention your orders to gain your trust.',
};
const categoryWords = (c: string) => CATEGORY_WORDS[c] ?? c.replace(/_/g, ' ');

function actorWords(r: BlastRadiusReport): string {
  const a = r.actor;
  if (a.kind === 'staff') return `staff member ${a.id}`;
  if (a.kind === 'apikey') return `API key ${a.id}`;
  return `the source address ${a.id} (actors seen there: ${r.actors.length === 0 ? 'none' : r.actors.join(', ')})`;
}

function exposureWords(e: Exposure): string {
  const parts = [e.database ? 'a copy of the database' : '', e.host ? 'the server host' : '', e.root_key ? 'the root key' : ''].filter((p) => p !== '');
  return parts.length === 0 ? 'nothing besides the credential: the database, the server host and the root key are not known to be affected' : `also reached: ${parts.join(', ')}`;
}

function controllerBlocks(c: Controller): Block[] {
  const contact = c.dpoContact !== undefined ? `Data protection officer: ${c.dpoContact}` : c.privacyContact !== undefined ? `Contact point: ${c.privacyContact}` : TODO('name and contact details of the data protection officer or another contact point');
  return [{ kind: 'ul', items: [`Controller: ${c.name}`, `Address: ${c.address ?? TODO('postal address')}`, contact] }];
}

export function authorityDraft(incident: IncidentView, report: BlastRadiusReport | undefined, controller: Controller, now: Date): Block[] {
  const clock = incident.clock;
  const late = clock.state === 'overdue' || clock.state === 'notified_late';
  const b: Block[] = [
    { kind: 'h1', text: 'Personal data breach notification (GDPR Art. 33) — draft' },
    {
      kind: 'note',
      text: `Draft made by Custos on ${now.toISOString()} for incident ${incident.id}. Check every statement, complete what is marked “to complete”, and send it through the supervisory authority’s notification form. Information may be given in phases (Art. 33(4)).`,
    },
    { kind: 'h2', text: '1. Controller and contact point (Art. 33(3)(b))' },
    ...controllerBlocks(controller),
    { kind: 'h2', text: '2. Timing (Art. 33(1))' },
    { kind: 'ul', items: [`Became aware: ${clock.aware_at}`, `72-hour deadline: ${clock.deadline_at}`, `Status of the incident: ${incident.status}`] },
  ];
  if (late) b.push({ kind: 'p', label: 'Reasons for the delay:', text: `This notification comes after the 72-hour deadline. ${TODO('the reasons for the delay (Art. 33(1))')}` });
  b.push(
    { kind: 'h2', text: '3. Nature of the breach (Art. 33(3)(a))' },
    { kind: 'p', label: 'Incident:', text: `${incident.title} (severity ${incident.severity}; opened ${incident.origin.kind === 'manual' ? 'by hand' : `from ${incident.origin.kind} ${incident.origin.ref ?? ''}`})` },
    { kind: 'p', label: 'What happened:', text: incident.description ?? TODO('what happened and how it was discovered') },
  );
  if (report === undefined) b.push({ kind: 'p', text: TODO('the scope: set the incident’s actor and time window to count the data subjects and records concerned') });
  else {
    const t = report.totals;
    b.push(
      { kind: 'p', label: 'Scope examined:', text: `the audit log’s record of ${actorWords(report)} from ${report.from} to ${report.to}; ${exposureWords(report.exposure)}.` },
      { kind: 'h3', text: 'Data subjects concerned' },
      {
        kind: 'ul',
        items: [
          'Category: customers of the shop',
          `Approximate number: ${t.customers}, of whom ${t.customers_exposed} had data given out in clear or masked or reachable unencrypted`,
          ...(report.all_stored_customers ? ['The stored data itself was reached and part of it is readable: every customer stored is concerned.'] : []),
        ],
      },
      { kind: 'h3', text: 'Personal data records concerned' },
      { kind: 'ul', items: [`Approximate number of records: ${t.records}`, `Accesses recorded: ${t.touching_entries} (and ${t.refused_entries} refused attempts)`] },
      {
        kind: 'table',
        head: ['Category', 'Fields', 'Customers', 'Assessment'],
        rows: report.categories.map((c) => [categoryWords(c.category), c.fields.join(', '), String(c.customers), c.decision]),
      },
      { kind: 'h3', text: 'Were the data unintelligible? (Art. 34(3)(a))' },
      {
        kind: 'table',
        head: ['Field', 'Accesses (clear / masked / not given / written)', 'Assessment', 'Why'],
        rows: report.fields.map((f) => [
          `${f.collection}.${f.field}`,
          `${f.touches.clear} / ${f.touches.masked} / ${f.touches.not_released} / ${f.touches.written}`,
          f.decision,
          REASON_WORDS[f.reason] + (f.modified ? '; written by the actor: check its integrity' : ''),
        ]),
      },
      {
        kind: 'p',
        label: 'Key state:',
        text: `root key from ${report.keys.root_provider}${report.keys.root_beside_database ? ', kept in a file beside the data' : ''}; key-encryption key version ${report.keys.kek_version}${report.keys.keks_under_older_root > 0 ? ` (${report.keys.keks_under_older_root} versions still under an older root key)` : ''}; every protected field is sealed with AES-256-GCM under its customer’s data key.`,
      },
    );
  }
  const categories = report?.categories.filter((c) => c.decision !== 'protected').map((c) => c.category) ?? [];
  const suggested = categories.map((c) => CONSEQUENCES[c]).filter((c) => c !== undefined);
  b.push(
    { kind: 'h2', text: '4. Likely consequences (Art. 33(3)(c))' },
    { kind: 'p', text: incident.consequences ?? (suggested.length > 0 ? `Possible, given the data exposed: ${suggested.join('; ')}. ${TODO('the assessment for these data subjects')}` : TODO('the likely consequences for the data subjects')) },
    { kind: 'h2', text: '5. Measures taken or proposed (Art. 33(3)(d))' },
    { kind: 'p', text: incident.measures ?? TODO('what was done to stop the breach and to mitigate its effects, and what is planned') },
  );
  const steps = incident.timeline.filter((e) => e.kind === 'status').map((e) => `${e.at}: ${String(e.detail.from)} → ${String(e.detail.to)}`);
  if (steps.length > 0) b.push({ kind: 'p', label: 'Recorded steps:', text: steps.join('\n') });
  if (report?.cards.involved === true) b.push(...cardBlocks(report));
  b.push({ kind: 'h2', text: `${report?.cards.involved === true ? 7 : 6}. Communication to the data subjects (Art. 34)` });
  if (report === undefined) b.push({ kind: 'p', text: TODO('whether the data subjects are told, and why') });
  else if (report.totals.customers_exposed === 0 && !report.all_stored_customers)
    b.push({ kind: 'p', text: 'Every affected field stayed unintelligible to the unauthorised party (encrypted under keys that were not exposed, or never given out): under Art. 34(3)(a) the data subjects need not be told. The assessment above records why.' });
  else
    b.push({
      kind: 'p',
      text: `${report.all_stored_customers ? 'Every stored customer' : `${report.totals.customers_exposed} customers`} had data exposed in clear or masked form. Where this is likely to result in a high risk to them, they are told without undue delay (Art. 34(1)); ${TODO('the decision and its date')}.`,
    });
  return b;
}

function cardBlocks(report: BlastRadiusReport): Block[] {
  const brands = Object.entries(report.cards.brands).map(([brand, n]) => `${brand}: ${n}`);
  return [
    { kind: 'h2', text: '6. Payment cards: acquirer and card brands (PCI DSS 4.0.1 12.10.1)' },
    {
      kind: 'p',
      text: `Card data was involved: ${report.cards.records} card records, ${report.cards.reveals} reveals of a full card number, ${report.cards.relays} relays to a payment processor.${brands.length > 0 ? ` Brands: ${brands.join(', ')}.` : ''}`,
    },
    {
      kind: 'ul',
      items: [
        'Notify your acquirer (merchant bank) now, as your merchant agreement requires; it tells you which card brand procedures apply.',
        `Notify each card brand concerned under its own incident procedure${brands.length > 0 ? ` (${Object.keys(report.cards.brands).join(', ')})` : ''}; a brand may require a PCI Forensic Investigator (PFI).`,
        'Keep the evidence: do not delete logs, the audit log export or the affected systems’ images.',
        TODO('who notified the acquirer and the brands, and when'),
      ],
    },
  ];
}

export function customerDraft(incident: IncidentView, report: BlastRadiusReport | undefined, controller: Controller): Block[] {
  const exposed = report?.categories.filter((c) => c.decision !== 'protected') ?? [];
  const b: Block[] = [
    { kind: 'h1', text: 'About a personal data breach — draft notice to customers' },
    {
      kind: 'note',
      text: `Draft for incident ${incident.id}, for the customers listed in the export (${report === undefined ? 'scope not set' : `${report.totals.customers_exposed} with data exposed`}). Remove this note before sending.`,
    },
    { kind: 'p', text: 'Dear customer,' },
    { kind: 'p', text: `We are writing to tell you about a security incident at ${controller.name} that concerns your personal data.` },
    { kind: 'h2', text: 'What happened' },
    { kind: 'p', text: incident.description ?? TODO('in plain words, what happened and when') },
    { kind: 'h2', text: 'Which of your data was concerned' },
  ];
  if (exposed.length > 0) b.push({ kind: 'ul', items: exposed.map((c) => categoryWords(c.category)) });
  else b.push({ kind: 'p', text: TODO('which of the customer’s data was concerned') });
  b.push(
    { kind: 'h2', text: 'What this may mean for you' },
    { kind: 'p', text: incident.consequences ?? TODO('the likely consequences, in plain words') },
    { kind: 'h2', text: 'What we have done' },
    { kind: 'p', text: incident.measures ?? TODO('what the shop did to stop it and to protect the customers') },
  );
  const advice = [...new Set(exposed.map((c) => ADVICE[c.category]).filter((a) => a !== undefined))];
  b.push({ kind: 'h2', text: 'What you can do' }, advice.length > 0 ? { kind: 'ul', items: advice } : { kind: 'p', text: TODO('what the customer can do to protect themselves') });
  b.push({ kind: 'h2', text: 'Contact' }, ...controllerBlocks(controller));
  return b;
}

export function renderDrafts(incident: IncidentView, report: BlastRadiusReport | undefined, controller: Controller, now: Date): Drafts {
  const authority = authorityDraft(incident, report, controller, now);
  const customers = customerDraft(incident, report, controller);
  return {
    authority: { markdown: toMarkdown(authority), html: toHtml(authority, `Breach notification, incident ${incident.id}`) },
    customers: { markdown: toMarkdown(customers), html: toHtml(customers, 'About a personal data breach') },
  };
}
