import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { renderErrors, withConfigTable } from '../scripts/docs.ts';
import { COLLECT_MANIFEST, COLLECT_ROOT, renderCollectRelease } from '../src/modules/cards/collect-page.ts';

// Documentation generated from code must match what is committed: `npm run docs` rewrites both.
describe('documentation in step with the code', () => {
  it('docs/errors.md lists every error code with its status', async () => {
    expect(readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8')).toBe(await renderErrors());
  });

  it("the README's configuration table lists every variable config.ts reads", () => {
    const readme = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
    expect(readme).toBe(withConfigTable(readme));
  });

  it("the card-collection page's integrity attributes and release manifest match its files (npm run docs)", () => {
    const release = renderCollectRelease();
    expect(readFileSync(new URL('collect.html', COLLECT_ROOT), 'utf8')).toBe(release.html);
    expect(readFileSync(new URL(COLLECT_MANIFEST, COLLECT_ROOT), 'utf8')).toBe(release.manifest);
  });
});
