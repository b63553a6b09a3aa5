/**
 * A small document model that renders to Markdown and to HTML, so that each draft is written once
 * and every piece of text in it — an incident's title and notes come from people, and anything
 * may be pasted into them — is escaped by one function per format: HTML escapes & < > " '; Markdown
 * backslash-escapes every character that could start markup (CommonMark 2.4: any ASCII punctuation
 * may be escaped): everywhere the characters of emphasis, code, links, images, tables,
 * strikethrough, entities and raw HTML, and at a line's start those of headings, lists and
 * thematic breaks; line breaks become hard breaks, so no text can leave its paragraph.
 */
export type Block =
  | { readonly kind: 'h1' | 'h2' | 'h3'; readonly text: string }
  | { readonly kind: 'p'; readonly text: string; readonly label?: string }
  | { readonly kind: 'note'; readonly text: string }
  | { readonly kind: 'ul'; readonly items: readonly string[] }
  | { readonly kind: 'table'; readonly head: readonly string[]; readonly rows: readonly (readonly string[])[] };

const HTML_ESCAPES: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };

export function escapeHtml(text: string): string {
  return text.replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]!);
}

/** Markdown-escapes one line of text (inline markup, and block markup at the line's start). */
function escapeMarkdownLine(line: string): string {
  const inline = line.replace(/[\\`*_[\]<>|~&]/g, (c) => `\\${c}`);
  // At the line's start: a heading (#), a list (-, +, 1. or 1)), a setext underline or thematic break (=, -).
  return inline.replace(/^([#+=-])/, '\\$1').replace(/^(\d+)([.)])/, '$1\\$2');
}

/** Markdown-escapes text; line breaks become hard breaks inside the same paragraph. */
export function escapeMarkdown(text: string): string {
  return text
    .replace(/\r\n?/g, '\n')
    .split('\n')
    .map((l) => escapeMarkdownLine(l.trim()))
    .filter((l, i, all) => l !== '' || (i > 0 && all[i - 1] !== ''))
    .join('\\\n')
    .replace(/(\\\n)+$/, '');
}

const cellMd = (text: string) => escapeMarkdown(text.replace(/\s+/g, ' '));

function blockMarkdown(b: Block): string {
  switch (b.kind) {
    case 'h1':
    case 'h2':
    case 'h3':
      return `${'#'.repeat(Number(b.kind[1]))} ${escapeMarkdown(b.text)}`;
    case 'p':
      return b.label === undefined ? escapeMarkdown(b.text) : `**${escapeMarkdown(b.label)}** ${escapeMarkdown(b.text)}`;
    case 'note':
      return `> ${escapeMarkdown(b.text).replace(/\\\n/g, '\\\n> ')}`;
    case 'ul':
      return b.items.map((i) => `- ${cellMd(i)}`).join('\n');
    case 'table':
      return [`| ${b.head.map(cellMd).join(' | ')} |`, `|${b.head.map(() => ' --- ').join('|')}|`, ...b.rows.map((r) => `| ${r.map(cellMd).join(' | ')} |`)].join('\n');
  }
}

export function toMarkdown(blocks: readonly Block[]): string {
  return `${blocks.map(blockMarkdown).join('\n\n')}\n`;
}

const textHtml = (text: string) => escapeHtml(text.replace(/\r\n?/g, '\n').trim()).replace(/\n/g, '<br>\n');

function blockHtml(b: Block): string {
  switch (b.kind) {
    case 'h1':
    case 'h2':
    case 'h3':
      return `<${b.kind}>${escapeHtml(b.text)}</${b.kind}>`;
    case 'p':
      return `<p>${b.label === undefined ? '' : `<strong>${escapeHtml(b.label)}</strong> `}${textHtml(b.text)}</p>`;
    case 'note':
      return `<blockquote><p>${textHtml(b.text)}</p></blockquote>`;
    case 'ul':
      return `<ul>\n${b.items.map((i) => `<li>${escapeHtml(i)}</li>`).join('\n')}\n</ul>`;
    case 'table':
      return `<table>\n<thead><tr>${b.head.map((h) => `<th>${escapeHtml(h)}</th>`).join('')}</tr></thead>\n<tbody>\n${b.rows
        .map((r) => `<tr>${r.map((c) => `<td>${escapeHtml(c)}</td>`).join('')}</tr>`)
        .join('\n')}\n</tbody>\n</table>`;
  }
}

export function toHtml(blocks: readonly Block[], title: string): string {
  const body = blocks.map(blockHtml);
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="default-src 'none'; style-src 'unsafe-inline'">
<title>${escapeHtml(title)}</title>
<style>body{font-family:system-ui,sans-serif;max-width:50rem;margin:2rem auto;line-height:1.5}table{border-collapse:collapse}td,th{border:1px solid #999;padding:.25rem .5rem;text-align:left}blockquote{border-left:4px solid #c60;margin-left:0;padding-left:1rem}</style>
</head>
<body>
${body.join('\n')}
</body>
</html>
`;
}
