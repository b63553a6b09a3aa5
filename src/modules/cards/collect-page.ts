import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';

/**
 * The card-collection page (/cards/collect): the card fields a checkout embeds in an iframe, so
 * the card number goes from the customer's browser to Custos and never through the shop.
 *
 * PCI DSS 4.0.1 6.4.3 (scripts of a payment page authorised, integrity-checked, inventoried): the
 * page loads one script and one stylesheet, both its own, each with a Subresource Integrity hash
 * (sha384) written in the HTML; the Content-Security-Policy names the script by that hash alone
 * (no 'self', nothing inline, no eval) and trusted types forbid HTML sinks; COLLECT_FILES is the
 * inventory with each file's justification, served at /cards/collect/scripts.json.
 *
 * 11.6.1 (unauthorised change to a payment page detected): the files are read once at start and
 * served from memory; their SHA-256 is compared with the release manifest
 * (web/cards/collect.manifest.json, written by `npm run docs`) — a file that differs is withheld
 * (503) — and, with the response headers, with the page as last served (collect-monitor.ts).
 */
export const COLLECT_ROOT = new URL('../../../web/cards/', import.meta.url);
export const COLLECT_MANIFEST = 'collect.manifest.json';
export const COLLECT_PATH = '/cards/collect';

export interface CollectFile {
  readonly file: string;
  readonly path: string;
  readonly type: string;
  readonly kind: 'page' | 'script' | 'style';
  /** Why the payment page needs it (6.4.3). */
  readonly justification: string;
}

export const COLLECT_FILES: readonly CollectFile[] = [
  { file: 'collect.html', path: COLLECT_PATH, type: 'text/html; charset=utf-8', kind: 'page', justification: 'The card fields themselves: number, expiry, security code, cardholder name.' },
  {
    file: 'collect.js',
    path: `${COLLECT_PATH}/collect.js`,
    type: 'text/javascript; charset=utf-8',
    kind: 'script',
    justification:
      'Reads the fields, sends them with the publishable key to POST /v1/cards/collect on this origin, and hands the answer (the token, never the card number) to the storefront origin the session names by postMessage. No other script runs on the page.',
  },
  { file: 'collect.css', path: `${COLLECT_PATH}/collect.css`, type: 'text/css; charset=utf-8', kind: 'style', justification: 'Layout of the fields; no script, no remote resources.' },
];

export const sha256Hex = (body: Buffer | string) => createHash('sha256').update(body).digest('hex');
export const sriOf = (body: Buffer | string) => `sha384-${createHash('sha384').update(body).digest('base64')}`;

export interface ServedFile extends CollectFile {
  readonly body: Buffer;
  readonly sha256: string;
  readonly integrity: string;
}

export interface CollectPage {
  readonly files: readonly ServedFile[];
  /** Every header the page is served with (security headers of the app, then the page's own). */
  readonly headers: Readonly<Record<string, string>>;
  /** Files whose SHA-256 differs from the release manifest (or that it does not list): withheld. */
  readonly altered: readonly string[];
  /** SHA-256 of each part as served: the files, and `headers`. */
  readonly parts: ReadonlyMap<string, string>;
  /** Parts whose file on disk no longer matches what is served (read anew). */
  diskChanges(): string[];
  /** The 6.4.3 inventory: scripts and styles with their integrity hashes and justification. */
  inventory(): Record<string, unknown>;
}

/** The page's Content-Security-Policy: its one script by hash, its own stylesheet, calls to this origin, framed only by the storefronts. */
export function collectCsp(scriptIntegrity: string, storefrontOrigins: readonly string[]): string {
  return [
    "default-src 'none'",
    `script-src '${scriptIntegrity}'`,
    "style-src 'self'",
    "connect-src 'self'",
    "img-src 'none'",
    "base-uri 'none'",
    "form-action 'none'",
    `frame-ancestors ${storefrontOrigins.length === 0 ? "'none'" : storefrontOrigins.join(' ')}`,
    "require-trusted-types-for 'script'",
    "trusted-types 'none'",
  ].join('; ');
}

/** The release manifest: SHA-256 (hex) of each file, as `npm run docs` last wrote it. */
export function readManifest(root: URL): Record<string, string> {
  const file = new URL(COLLECT_MANIFEST, root);
  if (!existsSync(file)) return {};
  try {
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as { files?: Record<string, string> };
    return parsed.files ?? {};
  } catch {
    return {};
  }
}

/**
 * What `npm run docs` writes: the HTML with each `integrity` attribute set to the hash of the file
 * its tag loads, and the manifest of every file's SHA-256.
 */
export function renderCollectRelease(root: URL = COLLECT_ROOT): { html: string; manifest: string } {
  let html = readFileSync(new URL('collect.html', root), 'utf8');
  for (const f of COLLECT_FILES.filter((x) => x.kind !== 'page')) {
    const attr = f.kind === 'script' ? 'src' : 'href';
    const tag = new RegExp(`(${attr}="${f.path.replaceAll('/', '\\/').replaceAll('.', '\\.')}"[^>]*?integrity=")[^"]*(")`);
    if (!tag.test(html)) throw new Error(`collect.html has no tag loading ${f.path} with an integrity attribute`);
    html = html.replace(tag, `$1${sriOf(readFileSync(new URL(f.file, root)))}$2`);
  }
  const files: Record<string, string> = {};
  for (const f of COLLECT_FILES) files[f.file] = sha256Hex(f.kind === 'page' ? html : readFileSync(new URL(f.file, root)));
  return { html, manifest: `${JSON.stringify({ page: COLLECT_PATH, algorithm: 'sha256', files }, null, 2)}\n` };
}

/**
 * Reads the page's files once (served from memory from then on), hashes them, and compares them
 * with the release manifest. `baseHeaders` are the app's security headers; X-Frame-Options is
 * dropped (frame-ancestors decides who may frame the page).
 */
export function loadCollectPage(options: { root?: URL; storefrontOrigins: readonly string[]; baseHeaders: Readonly<Record<string, string>> }): CollectPage {
  const root = options.root ?? COLLECT_ROOT;
  const read = (file: string) => readFileSync(new URL(file, root));
  const files: ServedFile[] = COLLECT_FILES.map((f) => {
    const body = read(f.file);
    return { ...f, body, sha256: sha256Hex(body), integrity: sriOf(body) };
  });
  const manifest = readManifest(root);
  const altered = files.filter((f) => manifest[f.file] !== f.sha256).map((f) => f.file);
  const script = files.find((f) => f.kind === 'script')!;
  const headers: Record<string, string> = { ...options.baseHeaders };
  delete headers['x-frame-options'];
  headers['content-security-policy'] = collectCsp(script.integrity, options.storefrontOrigins);
  headers['cache-control'] = 'no-cache';
  const headerText = Object.keys(headers)
    .sort()
    .map((k) => `${k}: ${headers[k]!}`)
    .join('\n');
  const parts = new Map<string, string>([...files.map((f) => [f.file, f.sha256] as const), ['headers', sha256Hex(headerText)]]);
  return {
    files,
    headers,
    altered,
    parts,
    diskChanges() {
      return files.filter((f) => {
        try {
          return sha256Hex(read(f.file)) !== f.sha256;
        } catch {
          return true;
        }
      }).map((f) => f.file);
    },
    inventory() {
      const entry = (f: ServedFile) => ({ src: f.path, integrity: f.integrity, sha256: f.sha256, justification: f.justification });
      return {
        page: { path: COLLECT_PATH, sha256: files.find((f) => f.kind === 'page')!.sha256, headers_sha256: parts.get('headers') },
        scripts: files.filter((f) => f.kind === 'script').map(entry),
        styles: files.filter((f) => f.kind === 'style').map(entry),
        content_security_policy: headers['content-security-policy'],
        authorised_by: `the release manifest web/cards/${COLLECT_MANIFEST}`,
        manifest: altered.length === 0 ? 'match' : 'mismatch',
        ...(altered.length === 0 ? {} : { withheld: altered }),
      };
    },
  };
}
