import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { VAULT_AUDIT_ACTIONS } from './module.ts';

describe('vault module.ts stays true', () => {
  it('declares exactly the audit actions the vault sources write', () => {
    const dir = new URL('.', import.meta.url);
    const used = new Set<string>();
    for (const file of readdirSync(dir).filter((n) => n.endsWith('.ts') && !n.includes('.test.') && n !== 'module.ts'))
      for (const m of readFileSync(new URL(file, dir), 'utf8').matchAll(/action: '([a-z_]+\.[a-z_.]+)'/g)) used.add(m[1]!);
    expect([...used].sort()).toEqual([...VAULT_AUDIT_ACTIONS].sort());
  });
});
