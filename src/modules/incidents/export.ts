import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fail } from '../../kernel/errors.ts';
import { IncidentErrors } from './errors.ts';
import type { CustomerReport } from './report.ts';
import type { ExportBundle } from './service.ts';

/**
 * `custos incident export`: a folder, not an archive — the officer opens the drafts as they are,
 * uploads them to the authority's form, hands the folder to counsel or zips it with any tool; no
 * archive library is needed, and the file modes protect the affected list (folder 0700, files
 * 0600: it lists customers). A folder that exists is never written into. `manifest.json` names
 * every file with its size and SHA-256, and `SHA256SUMS` repeats the digests in the form
 * `sha256sum -c` checks, so whoever receives the folder can tell that nothing in it changed.
 */
export const EXPORT_FORMAT = 'custos-incident-export/1';

const csvCell = (v: string | number | boolean) => {
  const s = String(v);
  return /[",\n\r]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
};

function customersCsv(customers: readonly CustomerReport[]): string {
  const head = ['customer_id', 'entries', 'records', 'first_at', 'last_at', 'fields', 'exposed_fields', 'art34_3_a'];
  const rows = customers.map((c) => [c.customer_id, c.entries, c.records, c.first_at, c.last_at, c.fields.join(' '), c.exposed_fields.join(' '), c.art34_3_a].map(csvCell).join(','));
  return `${[head.join(','), ...rows].join('\n')}\n`;
}

/** The files of an export, by name. */
export function exportFiles(bundle: ExportBundle): Map<string, string> {
  const { timeline, ...incident } = bundle.incident;
  const json = (v: unknown) => `${JSON.stringify(v, null, 2)}\n`;
  const files = new Map<string, string>([
    ['incident.json', json(incident)],
    ['timeline.json', json(timeline)],
    ['authority-notification.md', bundle.drafts.authority.markdown],
    ['authority-notification.html', bundle.drafts.authority.html],
    ['customer-notice.md', bundle.drafts.customers.markdown],
    ['customer-notice.html', bundle.drafts.customers.html],
  ]);
  if (bundle.report !== undefined) {
    const { customers, ...summary } = bundle.report;
    files.set('blast-radius.json', json(summary));
    files.set('affected-customers.csv', customersCsv(customers));
  }
  const digest = (text: string) => createHash('sha256').update(text, 'utf8').digest('hex');
  const listed = [...files.entries()].map(([name, text]) => ({ name, bytes: Buffer.byteLength(text, 'utf8'), sha256: digest(text) }));
  files.set('manifest.json', json({ format: EXPORT_FORMAT, incident: bundle.incident.id, exported_at: bundle.exported_at, exported_by: bundle.exported_by, files: listed }));
  files.set('SHA256SUMS', listed.map((f) => `${f.sha256}  ${f.name}\n`).join(''));
  return files;
}

/** Writes the export into `dir`, which must not exist yet (its parent must). */
export function writeExport(dir: string, files: ReadonlyMap<string, string>): void {
  try {
    mkdirSync(dir, { mode: 0o700 });
  } catch (error) {
    if ((error as { code?: string }).code === 'EEXIST') fail(IncidentErrors.INCIDENTS_EXPORT_TARGET_EXISTS, 'the export folder already exists; name a new one');
    throw error;
  }
  for (const [name, text] of files) writeFileSync(join(dir, name), text, { mode: 0o600, flag: 'wx' });
}
