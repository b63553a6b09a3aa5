import type { LegalBasis, NoticeLanguage, Retention } from '../inventory/index.ts';

/** The fixed wording of the notice per language; adding a language is adding one entry here and in the inventory's descriptions. */
export interface NoticeTexts {
  readonly title: string;
  readonly controller: string;
  readonly contact: string;
  readonly dpo: string;
  readonly purposes: string;
  readonly data: string;
  readonly basis: string;
  readonly retention: string;
  readonly recipients: string;
  readonly pastRecipients: string;
  readonly noRecipients: string;
  readonly rights: string;
  readonly rightsText: readonly string[];
  readonly consentText: string;
  readonly gpcText: string;
  readonly complaint: string;
  readonly version: string;
  readonly bases: Readonly<Record<LegalBasis, string>>;
  readonly roles: Readonly<Record<'processor' | 'controller', string>>;
  readonly safeguards: Readonly<Record<'adequacy' | 'scc' | 'bcr', string>>;
  readonly accountLifetime: string;
  readonly units: Readonly<Record<'Y' | 'M' | 'W' | 'D', [one: string, many: string]>>;
  /** What an anchored retention counts from. */
  readonly anchors: Readonly<Record<'end_of_year' | 'created' | 'account_closed', string>>;
}

export const TEXTS: Readonly<Record<NoticeLanguage, NoticeTexts>> = {
  en: {
    title: 'Privacy notice',
    controller: 'Who is responsible',
    contact: 'Privacy contact',
    dpo: 'Data protection officer',
    purposes: 'What we use your data for',
    data: 'Data',
    basis: 'Legal basis',
    retention: 'Kept for',
    recipients: 'Who receives your data',
    pastRecipients: 'Past recipients',
    noRecipients: 'No one outside the shop.',
    rights: 'Your rights',
    rightsText: [
      'You may ask for access to your data, its correction or erasure, restriction of its processing, and a copy in a machine-readable format (GDPR Art. 15-20).',
      'You may object to processing based on legitimate interests, and to direct marketing at any time (Art. 21).',
    ],
    consentText: 'Where we rely on your consent, you may withdraw it at any time, as easily as you gave it; this does not affect processing before the withdrawal (Art. 7(3)).',
    gpcText: 'We honour the Global Privacy Control signal as an opt-out of the sale or sharing of your data.',
    complaint: 'You may lodge a complaint with a supervisory authority (Art. 77).',
    version: 'Version',
    bases: {
      contract: 'performance of a contract (GDPR Art. 6(1)(b))',
      legal_obligation: 'legal obligation (Art. 6(1)(c))',
      legitimate_interest: 'legitimate interests (Art. 6(1)(f))',
      consent: 'your consent (Art. 6(1)(a))',
      vital_interest: 'vital interests (Art. 6(1)(d))',
      public_task: 'public task (Art. 6(1)(e))',
    },
    roles: { processor: 'processor acting for us', controller: 'independent controller' },
    safeguards: { adequacy: 'adequacy decision', scc: 'standard contractual clauses', bcr: 'binding corporate rules' },
    accountLifetime: 'as long as your account exists',
    units: { Y: ['year', 'years'], M: ['month', 'months'], W: ['week', 'weeks'], D: ['day', 'days'] },
    anchors: { end_of_year: 'from the end of the calendar year of the record', created: 'from the record\'s creation', account_closed: 'from the closing of your account' },
  },
  de: {
    title: 'Datenschutzerklärung',
    controller: 'Verantwortlicher',
    contact: 'Kontakt für Datenschutzfragen',
    dpo: 'Datenschutzbeauftragter',
    purposes: 'Wofür wir Ihre Daten verwenden',
    data: 'Daten',
    basis: 'Rechtsgrundlage',
    retention: 'Speicherdauer',
    recipients: 'Wer Ihre Daten erhält',
    pastRecipients: 'Frühere Empfänger',
    noRecipients: 'Niemand außerhalb des Shops.',
    rights: 'Ihre Rechte',
    rightsText: [
      'Sie können Auskunft über Ihre Daten, ihre Berichtigung oder Löschung, die Einschränkung der Verarbeitung und eine Kopie in einem maschinenlesbaren Format verlangen (DSGVO Art. 15-20).',
      'Sie können der Verarbeitung aufgrund berechtigter Interessen widersprechen, der Direktwerbung jederzeit (Art. 21).',
    ],
    consentText: 'Soweit wir uns auf Ihre Einwilligung stützen, können Sie sie jederzeit so einfach widerrufen, wie Sie sie erteilt haben; die Verarbeitung bis zum Widerruf bleibt davon unberührt (Art. 7(3)).',
    gpcText: 'Wir beachten das Signal Global Privacy Control als Widerspruch gegen den Verkauf oder die Weitergabe Ihrer Daten.',
    complaint: 'Sie können sich bei einer Aufsichtsbehörde beschweren (Art. 77).',
    version: 'Version',
    bases: {
      contract: 'Vertragserfüllung (DSGVO Art. 6(1)(b))',
      legal_obligation: 'rechtliche Verpflichtung (Art. 6(1)(c))',
      legitimate_interest: 'berechtigte Interessen (Art. 6(1)(f))',
      consent: 'Ihre Einwilligung (Art. 6(1)(a))',
      vital_interest: 'lebenswichtige Interessen (Art. 6(1)(d))',
      public_task: 'öffentliche Aufgabe (Art. 6(1)(e))',
    },
    roles: { processor: 'Auftragsverarbeiter', controller: 'eigenständig Verantwortlicher' },
    safeguards: { adequacy: 'Angemessenheitsbeschluss', scc: 'Standardvertragsklauseln', bcr: 'verbindliche interne Datenschutzvorschriften' },
    accountLifetime: 'solange Ihr Konto besteht',
    units: { Y: ['Jahr', 'Jahre'], M: ['Monat', 'Monate'], W: ['Woche', 'Wochen'], D: ['Tag', 'Tage'] },
    anchors: { end_of_year: 'ab Ende des Kalenderjahres des Datensatzes', created: 'ab Erstellung des Datensatzes', account_closed: 'ab Schließung Ihres Kontos' },
  },
};

/**
 * A retention in words: P8Y → "8 years", account_lifetime → "as long as your account exists",
 * an anchored period → its default period and anchor ("8 years from the end of the calendar year …").
 */
export function retentionInWords(retention: Retention, t: NoticeTexts): string {
  if (typeof retention !== 'string') return `${retentionInWords(retention.period, t)} ${t.anchors[retention.from]}`;
  if (retention === 'account_lifetime') return t.accountLifetime;
  const parts: string[] = [];
  for (const m of retention.slice(1).matchAll(/(\d+)([YMWD])/g)) {
    const n = Number(m[1]);
    const [one, many] = t.units[m[2] as 'Y' | 'M' | 'W' | 'D'];
    parts.push(`${n} ${n === 1 ? one : many}`);
  }
  return parts.join(' ');
}

/** A retention as one line of text for machine-read exports: the duration, or `P8Y from end_of_year (DE P8Y, FR P10Y)`. */
export function retentionText(retention: Retention): string {
  if (typeof retention === 'string') return retention;
  const countries = Object.entries(retention.by_country ?? {}).map(([country, period]) => `${country} ${period}`);
  return `${retention.period} from ${retention.from}${countries.length > 0 ? ` (${countries.join(', ')})` : ''}`;
}
