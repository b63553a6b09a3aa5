/**
 * CSV as RFC 4180 writes it: every cell quoted, quotes doubled, lines ended by CRLF. A cell that
 * starts with a character a spreadsheet reads as a formula (`=`, `+`, `-`, `@`, tab, carriage
 * return) gets a leading `'`, so opening the file never runs it (OWASP, CSV Injection).
 */
export function csvCell(value: string | number | boolean | null | undefined): string {
  const s = value === null || value === undefined ? '' : String(value);
  return `"${(/^[=+\-@\t\r]/.test(s) ? `'${s}` : s).replace(/"/g, '""')}"`;
}

/** One line of cells, CRLF-terminated. */
export function csvLine(cells: readonly (string | number | boolean | null | undefined)[]): string {
  return `${cells.map(csvCell).join(',')}\r\n`;
}
