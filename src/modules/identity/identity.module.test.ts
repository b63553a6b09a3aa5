import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { STAFF_AUDIT_ACTIONS } from '../staff/module.ts';
import { IDENTITY_AUDIT_ACTIONS } from './module.ts';

function sources(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return name === 'test-support' ? [] : sources(path);
    return name.endsWith('.ts') && !name.includes('.test.') && name !== 'module.ts' ? [path] : [];
  });
}

describe('identity module.ts stays true', () => {
  it('declares every audit action the identity sources write by name', () => {
    const used = new Set<string>();
    for (const file of sources(fileURLToPath(new URL('.', import.meta.url))))
      for (const m of readFileSync(file, 'utf8').matchAll(/action: '([a-z_]+\.[a-z_.]+)'/g)) used.add(m[1]!);
    expect(used.size).toBeGreaterThan(0);
    // Staff sign-in refusals are staff's vocabulary, written where the staff session is checked.
    for (const action of used) expect([...IDENTITY_AUDIT_ACTIONS, ...STAFF_AUDIT_ACTIONS], action).toContain(action);
  });

  it('names every table identity declares', () => {
    const text = readFileSync(new URL('./module.ts', import.meta.url), 'utf8');
    for (const file of ['./tables.ts', './sessions/session-tables.ts'])
      for (const m of readFileSync(new URL(file, import.meta.url), 'utf8').matchAll(/^ {2}(identity_[a-z_]+): \{/gm)) expect(text, m[1]).toContain(m[1]!);
  });
});
