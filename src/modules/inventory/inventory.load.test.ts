import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { InventoryError, loadInventory } from './index.ts';

/** Writes a shop inventory (extending the default) and returns its path. */
function shopFile(lines: string[]): string {
  const file = join(mkdtempSync(join(tmpdir(), 'custos-inventory-')), 'shop.yaml');
  writeFileSync(file, ['version: 1', 'extends: default', ...lines, ''].join('\n'));
  return file;
}

function refusal(file: string): string {
  try {
    loadInventory(file);
  } catch (error) {
    if (error instanceof InventoryError) return error.message;
    throw error;
  }
  throw new Error('the inventory was accepted');
}

const field = (name: string, purposes: string, extra = '') =>
  `      ${name}: { type: string, category: preference, protection: randomised, retention: account_lifetime, export: true${extra}, purposes: ${purposes} }`;

describe('inventory names cannot shadow Object.prototype', () => {
  // Attack: a purpose named `constructor` is found on every field's purposes object
  // (`purposes['constructor']` is Object), so a key scoped to it would be granted every field.
  it('a purpose named constructor is refused with file and line', () => {
    const file = shopFile(['purposes:', '  constructor:', '    description: Every field, in clear.']);
    expect(refusal(file)).toMatch(new RegExp(`^${file}:4:3: purposes\\.constructor: .*another purpose name`));
  });

  it('collections, fields, sub-fields and purpose uses named after Object.prototype members are refused with file and line', () => {
    const collection = shopFile(['collections:', '  constructor:', '    fields: {}']);
    expect(refusal(collection)).toContain(`${collection}:4:3: collections.constructor:`);
    const fieldFile = shopFile(['collections:', '  customers:', '    fields:', field('constructor', '{ account: { basis: contract } }')]);
    expect(refusal(fieldFile)).toContain(`${fieldFile}:6:7: collections.customers.fields.constructor:`);
    const proto = shopFile(['collections:', '  customers:', '    fields:', field('__proto__', '{ account: { basis: contract } }')]);
    expect(refusal(proto)).toContain(`${proto}:6:7: collections.customers.fields.__proto__:`);
    const use = shopFile(['collections:', '  customers:', '    fields:', field('tier', '{ toString: { basis: contract } }')]);
    expect(refusal(use)).toContain('collections.customers.fields.tier.purposes.toString:');
    const sub = shopFile([
      'collections:',
      '  customers:',
      '    fields:',
      '      pref: { type: object, category: preference, protection: randomised, retention: account_lifetime, export: true, purposes: { account: { basis: contract } }, fields: { constructor: { type: string } } }',
    ]);
    expect(refusal(sub)).toMatch(new RegExp(`${sub}:6:\\d+: collections\\.customers\\.fields\\.pref\\.fields\\.constructor: .*another sub-field name`));
  });
});

describe('masking never silently releases', () => {
  // Attack on the data: a purpose granted a field "masked" whose mask is none gets it in clear.
  it('access: masked on a field whose mask is none is refused with file and line', () => {
    const file = shopFile(['collections:', '  customers:', '    fields:', field('tier', '{ support: { basis: contract, access: masked } }', ', mask: none')]);
    expect(refusal(file)).toMatch(new RegExp(`${file}:6:\\d+: collections\\.customers\\.fields\\.tier\\.mask: the mask is none, so access: masked for support`));
  });

  it('a part of an object field declaring mask none is refused where the field is released masked', () => {
    const file = shopFile([
      'collections:',
      '  customers:',
      '    fields:',
      '      pref: { type: object, category: preference, protection: randomised, retention: account_lifetime, export: true, mask: partial, purposes: { support: { basis: contract, access: masked } }, fields: { colour: { type: string, mask: none } } }',
    ]);
    expect(refusal(file)).toContain('collections.customers.fields.pref.fields.colour.mask: the mask is none');
  });

  it('the default inventory loads: every masked use has a real mask', () => {
    const inventory = loadInventory();
    for (const col of inventory.collections.values())
      for (const f of col.fields.values())
        for (const use of f.purposes.values()) if (use.access === 'masked') expect(f.mask, `${col.name}.${f.name}`).not.toBe('none');
  });
});

describe('who may write what is declared', () => {
  it('write defaults to true where a purpose reads in clear, false where masked; the file may set it either way', () => {
    const file = shopFile([
      'purposes:',
      '  checkout:',
      '    description: Stores what the customer typed at checkout.',
      'collections:',
      '  customers:',
      '    fields:',
      field('tier', '{ account: { basis: contract }, support: { basis: contract, access: masked }, fulfilment: { basis: contract, write: false }, checkout: { basis: contract, access: none, write: true } }', ', mask: redact'),
    ]);
    const tier = loadInventory(file).collections.get('customers')!.fields.get('tier')!;
    const writes = Object.fromEntries([...tier.purposes].map(([p, use]) => [p, use.write]));
    expect(writes).toEqual({ account: true, support: false, fulfilment: false, checkout: true });
  });

  it('access: none without write: true is refused (it would grant nothing)', () => {
    const file = shopFile(['collections:', '  customers:', '    fields:', field('tier', '{ account: { basis: contract, access: none } }')]);
    expect(refusal(file)).toContain('collections.customers.fields.tier.purposes.account: access none without write: true');
  });

  it('the default inventory lets support correct contact fields and addresses, and only account record orders', () => {
    const inventory = loadInventory();
    const writers = (collection: string, name: string) =>
      [...inventory.collections.get(collection)!.fields.get(name)!.purposes].filter(([, u]) => u.write).map(([p]) => p).sort();
    for (const name of ['email', 'phone', 'name', 'locale']) expect(writers('customers', name), name).toEqual(['account', 'support']);
    expect(writers('customers', 'date_of_birth')).toEqual(['account']);
    for (const name of ['line1', 'city', 'postal_code', 'country']) expect(writers('addresses', name), name).toEqual(['account', 'fulfilment', 'support']);
    for (const f of inventory.collections.get('orders')!.fields.keys()) expect(writers('orders', f), f).toEqual(['account']);
  });
});

describe('every field says whether it goes into the data export (GDPR Art. 15(3), 20)', () => {
  it('a field without an export mark is refused, naming it', () => {
    const file = shopFile([
      'collections:',
      '  customers:',
      '    fields:',
      '      tier: { type: string, category: preference, protection: randomised, retention: account_lifetime, purposes: { account: { basis: contract } } }',
    ]);
    expect(refusal(file)).toMatch(/shop\.yaml:\d+:\d+: collections\.customers\.fields\.tier\.export: say whether the field goes into the customer's data export/);
  });

  it('every field of the default inventory is marked, and only the card number is left out of the export', () => {
    const inventory = loadInventory();
    const left: string[] = [];
    for (const col of inventory.collections.values())
      for (const f of col.fields.values()) {
        expect(typeof f.export, `${col.name}.${f.name}`).toBe('boolean');
        if (!f.export) left.push(`${col.name}.${f.name}`);
      }
    expect(left).toEqual(['cards.pan']);
  });
});
