import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { isAlias, isMap, isScalar, LineCounter, parseDocument, type Document } from 'yaml';
import type { z } from 'zod';
import { inventoryFileSchema, NOTICE_LANGUAGES, type ACCESS, type FieldSpec, type InventoryFile, type LegalBasis, type NoticeLanguage, type PurposeSpec } from './schema.ts';

/** One purpose's use of a field, with `write` resolved (absent in the file: true where access is clear). */
export interface PurposeUse {
  readonly basis: LegalBasis;
  readonly access: (typeof ACCESS)[number];
  readonly write: boolean;
}

/** One field of the declared inventory (data minimisation: what is not declared is not stored). */
export interface FieldDef extends Omit<FieldSpec, 'purposes' | 'export'> {
  readonly name: string;
  /** Released in the customer's access and portability export (GDPR Art. 15(3), 20(1)). */
  readonly export: boolean;
  readonly collection: string;
  /** Purpose → its use; a Map, so that no name a file or a request gives can reach Object.prototype. */
  readonly purposes: ReadonlyMap<string, PurposeUse>;
}

export interface CollectionDef {
  readonly name: string;
  readonly description: string | undefined;
  readonly parent: string | undefined;
  readonly fields: ReadonlyMap<string, FieldDef>;
}

/** A declared purpose. `description` is the English text; `descriptions` holds every notice language. */
export interface PurposeDef {
  readonly name: string;
  readonly description: string;
  readonly descriptions: Readonly<Record<NoticeLanguage, string>>;
  /** The legal bases its field uses declare (one, for a consent-based purpose: GDPR Art. 6(1)(a)). */
  readonly bases: readonly LegalBasis[];
  /** Every field use of this purpose has basis consent. */
  readonly consentBased: boolean;
  readonly saleOrSharing: boolean;
  /** The notice version the shop declares this purpose last changed in (Custos may know a later one). */
  readonly changedIn: number | undefined;
  readonly doubleOptIn: boolean;
}

export interface Inventory {
  readonly purposes: ReadonlyMap<string, PurposeDef>;
  readonly collections: ReadonlyMap<string, CollectionDef>;
  /** Where it came from, for messages and the record of processing. */
  readonly sources: readonly string[];
}

export class InventoryError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'InventoryError';
  }
}

export const DEFAULT_INVENTORY_FILE = fileURLToPath(new URL('./default-inventory.yaml', import.meta.url));

/** The collections the HTTP API serves; an inventory must declare them and no others (yet). */
export const SERVED_COLLECTIONS = { customers: undefined, addresses: 'customers', orders: 'customers', cards: 'customers' } as const;

interface Parsed {
  readonly data: InventoryFile;
  /** file:line:col of a path in this file, or undefined when the file does not hold it. */
  at(path: string[]): string | undefined;
}

function parseFile(file: string): Parsed {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch {
    throw new InventoryError(`${file}: cannot read the inventory file`);
  }
  const lineCounter = new LineCounter();
  const doc = parseDocument(text, { lineCounter, prettyErrors: false, uniqueKeys: true });
  const yamlError = doc.errors[0];
  if (yamlError !== undefined) {
    const pos = lineCounter.linePos(yamlError.pos[0]);
    throw new InventoryError(`${file}:${pos.line}:${pos.col}: ${yamlError.code.toLowerCase().replaceAll('_', ' ')}`);
  }
  const reserved = reservedNames(doc, lineCounter);
  if (reserved.length > 0) throw new InventoryError(reserved.map((r) => `${file}:${r}`).join('\n'));
  const result = inventoryFileSchema.safeParse(doc.toJS({ maxAliasCount: 1000 }));
  if (!result.success) throw new InventoryError(describeIssues(file, doc, lineCounter, result.error.issues));
  return {
    data: result.data,
    at: (path) => (doc.hasIn(path) ? `${file}:${locate(doc, lineCounter, path)}` : undefined),
  };
}

/** Names every JavaScript object has (`constructor`, `__proto__`, `toString`, …). */
const OBJECT_MEMBERS: ReadonlySet<string> = new Set(Object.getOwnPropertyNames(Object.prototype));

/**
 * Names of purposes, collections, fields and sub-fields that would shadow an `Object.prototype`
 * member, as `line:col: path: message`. Checked on the YAML document itself, before it becomes a
 * JavaScript object, so that such a name can never be mistaken for a declared one.
 */
function reservedNames(doc: Document, lc: LineCounter): string[] {
  const out: string[] = [];
  const pairs = (node: unknown, path: string[], what: string): [string, unknown][] => {
    const map = isAlias(node) ? node.resolve(doc) : node;
    if (!isMap(map)) return [];
    const found: [string, unknown][] = [];
    for (const pair of map.items) {
      if (!isScalar(pair.key)) continue;
      const name = String(pair.key.value);
      if (OBJECT_MEMBERS.has(name)) {
        const pos = lc.linePos(pair.key.range?.[0] ?? 0);
        out.push(`${pos.line}:${pos.col}: ${[...path, name].join('.')}: '${name}' names a member of every JavaScript object; choose another ${what} name`);
      } else found.push([name, pair.value]);
    }
    return found;
  };
  const root = doc.contents;
  const get = (node: unknown, key: string): unknown => {
    const map = isAlias(node) ? node.resolve(doc) : node;
    return isMap(map) ? map.get(key, true) : undefined;
  };
  pairs(get(root, 'purposes'), ['purposes'], 'purpose');
  for (const [cname, col] of pairs(get(root, 'collections'), ['collections'], 'collection'))
    for (const [fname, field] of pairs(get(col, 'fields'), ['collections', cname, 'fields'], 'field')) {
      pairs(get(field, 'purposes'), ['collections', cname, 'fields', fname, 'purposes'], 'purpose');
      pairs(get(field, 'fields'), ['collections', cname, 'fields', fname, 'fields'], 'sub-field');
    }
  return out;
}

function describeIssues(file: string, doc: Document, lc: LineCounter, issues: z.core.$ZodIssue[]): string {
  return issues
    .slice(0, 10)
    .map((issue) => {
      let path = issue.path.map(String);
      let message = issue.message;
      if (issue.code === 'unrecognized_keys') {
        path = [...path, issue.keys[0] ?? ''];
        message = `unknown key '${issue.keys[0] ?? ''}'`;
      }
      return `${file}:${locate(doc, lc, path)}: ${path.join('.') || '(top)'}: ${message}`;
    })
    .join('\n');
}

/** Line:column of the deepest node on `path` that exists in the YAML document. */
function locate(doc: Document, lc: LineCounter, path: string[]): string {
  for (let depth = path.length; depth >= 0; depth--) {
    const parent = depth === 0 ? doc.contents : doc.getIn(path.slice(0, depth - 1), true);
    let offset: number | undefined;
    if (depth === 0) offset = doc.contents?.range?.[0];
    else if (isMap(parent)) {
      const pair = parent.items.find((p) => isScalar(p.key) && String(p.key.value) === path[depth - 1]);
      if (pair !== undefined && isScalar(pair.key)) offset = pair.key.range?.[0];
    }
    if (offset !== undefined) {
      const pos = lc.linePos(offset);
      return `${pos.line}:${pos.col}`;
    }
  }
  return '1:1';
}

function merge(base: InventoryFile, over: InventoryFile): InventoryFile {
  const purposes = { ...base.purposes, ...over.purposes };
  const collections: NonNullable<InventoryFile['collections']> = { ...base.collections };
  for (const [name, col] of Object.entries(over.collections ?? {})) {
    const prior = Object.hasOwn(collections, name) ? collections[name] : undefined;
    if (col === null || prior === null || prior === undefined) collections[name] = col;
    else collections[name] = { ...prior, ...col, fields: { ...prior.fields, ...col.fields } };
  }
  return { version: 1, purposes, collections };
}

/**
 * Why a masked release of `f` would show a value in clear (masking never silently releases): a
 * field whose mask is `none`, or a part of an object or list field that declares mask `none`.
 */
function maskProblems(f: FieldSpec): string[] {
  if (f.mask === 'none') return ['mask: the mask is none'];
  return Object.entries(f.fields ?? {})
    .filter(([, sub]) => sub.mask === 'none')
    .map(([sub]) => `fields.${sub}.mask: the mask is none`);
}

/**
 * Loads the default inventory, or the shop's file on top of it (`extends: default`) or instead of
 * it. Every error names the file, the line and the path, so the shop can fix it before start-up.
 */
export function loadInventory(shopFile?: string): Inventory {
  const base = parseFile(DEFAULT_INVENTORY_FILE);
  let file = base.data;
  const parsed = [base];
  if (shopFile !== undefined) {
    const shop = parseFile(shopFile);
    if (shop.data.extends === 'default') {
      file = merge(base.data, shop.data);
      parsed.unshift(shop);
    } else {
      file = shop.data;
      parsed.splice(0, 1, shop);
    }
  }
  const sources = parsed.map((_, i) => (i === 0 && shopFile !== undefined ? shopFile : DEFAULT_INVENTORY_FILE));
  const problemPaths: string[][] = [];
  const problems = {
    push(text: string) {
      problemPaths.push(text.split(': ', 1)[0]!.split('.'));
      messages.push(text);
    },
  };
  const messages: string[] = [];
  const purposes = new Map<string, PurposeDef>();
  const declared = new Map<string, PurposeSpec>();
  for (const [name, p] of Object.entries(file.purposes ?? {})) if (p !== null) declared.set(name, p);
  const bases = new Map<string, Set<LegalBasis>>([...declared.keys()].map((n) => [n, new Set<LegalBasis>()]));

  const collections = new Map<string, CollectionDef>();
  for (const [name, col] of Object.entries(file.collections ?? {})) {
    if (col === null) continue;
    if (!Object.hasOwn(SERVED_COLLECTIONS, name)) {
      problems.push(`collections.${name}: only customers, addresses and orders are served by the API`);
      continue;
    }
    const wantParent = SERVED_COLLECTIONS[name as keyof typeof SERVED_COLLECTIONS];
    if (col.parent !== wantParent) problems.push(`collections.${name}.parent: must be ${wantParent ?? 'absent'}`);
    const fields = new Map<string, FieldDef>();
    for (const [fname, f] of Object.entries(col.fields)) {
      if (f === null) continue;
      if (fname === 'id' || fname.endsWith('_at') && ['created_at', 'updated_at'].includes(fname))
        problems.push(`collections.${name}.fields.${fname}: the name is reserved`);
      const at = `collections.${name}.fields.${fname}`;
      const uses = new Map<string, PurposeUse>();
      for (const [purpose, use] of Object.entries(f.purposes)) {
        if (!declared.has(purpose)) problems.push(`${at}.purposes.${purpose}: unknown purpose`);
        else bases.get(purpose)!.add(use.basis);
        if (use.access === 'none' && use.write !== true)
          problems.push(`${at}.purposes.${purpose}: access none without write: true grants nothing; set write: true or leave the purpose out`);
        if (use.access === 'masked') for (const problem of maskProblems(f)) problems.push(`${at}.${problem}, so access: masked for ${purpose} would release it in clear`);
        uses.set(purpose, { basis: use.basis, access: use.access, write: use.write ?? use.access === 'clear' });
      }
      if (f.export === undefined)
        problems.push(`${at}.export: say whether the field goes into the customer's data export (true) or not (false) (GDPR Art. 15(3), 20)`);
      if (f.protection === 'plain' && f.category !== 'transaction')
        problems.push(`${at}.protection: plain is only for non-personal values (category transaction)`);
      const { purposes: _declared, export: exported, ...spec } = f;
      fields.set(fname, { ...spec, export: exported === true, purposes: uses, name: fname, collection: name });
    }
    collections.set(name, { name, description: col.description, parent: col.parent, fields });
  }
  for (const name of Object.keys(SERVED_COLLECTIONS))
    if (!collections.has(name)) problems.push(`collections.${name}: must be declared`);
  for (const [name, p] of declared) {
    const used = [...bases.get(name)!].sort();
    // A purpose is consent-based when every use is; one that mixes consent with another basis
    // could not say what a withdrawal stops (GDPR Art. 7(3), 17(1)(b)).
    if (used.includes('consent') && used.length > 1) problems.push(`purposes.${name}: mixes consent with other legal bases (${used.join(', ')})`);
    const descriptions = typeof p.description === 'string' ? Object.fromEntries(NOTICE_LANGUAGES.map((l) => [l, p.description as string])) : p.description;
    purposes.set(name, {
      name,
      description: descriptions.en,
      descriptions: descriptions as Record<NoticeLanguage, string>,
      bases: used,
      consentBased: used.length === 1 && used[0] === 'consent',
      saleOrSharing: p.sale_or_sharing,
      changedIn: p.changed_in,
      doubleOptIn: p.double_opt_in,
    });
  }
  if (messages.length > 0) {
    const lines = messages.map((text, i) => {
      const path = problemPaths[i]!;
      for (let depth = path.length; depth > 0; depth--) {
        for (const p of parsed) {
          const at = p.at(path.slice(0, depth));
          if (at !== undefined) return `${at}: ${text}`;
        }
      }
      return `${sources[0]}: ${text}`;
    });
    throw new InventoryError(lines.join('\n'));
  }
  return { purposes, collections, sources };
}
