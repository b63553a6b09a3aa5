import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TEST_DIALECT } from '../../../test/support/store.ts';
import { newId } from '../../kernel/ids.ts';
import type { Actor } from '../policy/service.ts';
import { CLI_OPERATOR } from '../staff/ports.ts';
import { escapeHtml, escapeMarkdown, toHtml, toMarkdown } from './render.ts';
import { incidentFixture, type IncidentFixture } from './test-support/fixture.ts';

/**
 * The drafts: Art. 33(3) contents for the authority, the Art. 34 notice for customers, the
 * PCI DSS 12.10.1 step when cards are involved, the reasons for a delay past 72 hours — and no
 * text of an incident, however hostile, can become markup in either format.
 */
const HOSTILE = {
  title: '<script>alert(1)</script> [click](javascript:alert(2)) **bold** `code` | pipe | & amp',
  description: '# Not a heading\n- not a list\n1. not ordered\n<img src=x onerror=alert(3)>\n![x](http://evil.example/x.png)\n---',
};

describe('escaping', () => {
  const MD_SPECIAL = /[\\`*_[\]<>|~&]/;
  /** Every Markdown-special character in `out` is escaped by an odd run of backslashes. */
  const allEscaped = (out: string) => {
    for (let i = 0; i < out.length; i++) {
      const c = out[i]!;
      if (c === '\\') {
        i += 1; // an escape and what it escapes (or the hard break it makes)
        continue;
      }
      if (MD_SPECIAL.test(c)) return false;
    }
    return true;
  };

  it('HTML: nothing but text, for any input', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const out = escapeHtml(s);
        expect(out).not.toMatch(/[<>"']/);
        expect(out.replace(/&(amp|lt|gt|quot|#39);/g, '')).not.toContain('&');
      }),
    );
  });

  it('Markdown: every markup character escaped, and no line can start a block, for any input', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), (s) => {
        const out = escapeMarkdown(s);
        expect(allEscaped(out)).toBe(true);
        for (const line of out.split('\n')) expect(line).not.toMatch(/^\s*([#+=-]|\d+[.)])/);
      }),
    );
  });

  it('a hostile title and description stay text in both formats', () => {
    const blocks = [
      { kind: 'h1' as const, text: HOSTILE.title },
      { kind: 'p' as const, label: HOSTILE.title, text: HOSTILE.description },
      { kind: 'ul' as const, items: [HOSTILE.description] },
      { kind: 'table' as const, head: [HOSTILE.title], rows: [[HOSTILE.description]] },
      { kind: 'note' as const, text: HOSTILE.description },
    ];
    const html = toHtml(blocks, HOSTILE.title);
    expect(html).not.toMatch(/<script|<img|javascript:alert\(2\)\)"|onerror=alert\(3\)>/);
    expect(html).toContain('&lt;script&gt;alert(1)&lt;/script&gt;');
    expect(html).toContain('&lt;img src=x onerror=alert(3)&gt;');
    const md = toMarkdown(blocks);
    expect(md).not.toMatch(/(^|[^\\])<script/);
    expect(md).toContain('\\[click\\](javascript:alert(2))');
    expect(md).toContain('\\<img src=x onerror=alert(3)\\>');
    expect(md).toContain('!\\[x\\](http://evil.example/x.png)');
    // Only the document's own markup starts a line: headings, list items, table rows, the note, a bold label.
    expect(md.split('\n').filter((l) => !/^(#{1,3} |- |\| |> |\*\*)/.test(l) && /^\s*(#|-|\d+\.|\*|\+|>|\|)/.test(l))).toEqual([]);
  });
});

describe(`drafts (${TEST_DIALECT})`, () => {
  let f: IncidentFixture;
  let customers: string[];
  const key: Actor = { ref: `apikey:${newId('key')}`, kind: 'apikey', purposes: ['account', 'payments'] };
  const keyId = key.ref.slice('apikey:'.length);
  beforeAll(async () => {
    f = await incidentFixture();
    customers = [await f.customer(), await f.customer()];
    for (const c of customers) await f.vault.readCustomer({ actor: key, purpose: 'account', requestId: 'r' }, c);
    f.clock.advance(1000);
  });
  afterAll(() => f?.close());
  const scope = () => ({ actor: { kind: 'apikey' as const, id: keyId }, from: new Date(f.clock.now().getTime() - 3_600_000).toISOString() });

  it('for the authority: the Art. 33(3) contents with the numbers from the blast radius, the DPO, hostile text escaped', async () => {
    const incident = await f.incidents.open(CLI_OPERATOR, { title: HOSTILE.title, description: HOSTILE.description, severity: 'high', scope: scope() });
    await f.incidents.setStatus(CLI_OPERATOR, incident.id, { status: 'contained' });
    const d = await f.incidents.drafts(CLI_OPERATOR, incident.id);
    for (const text of [d.authority.markdown, d.authority.html]) {
      expect(text).toContain('Art. 33(3)(a)');
      expect(text).toContain('Art. 33(3)(b)');
      expect(text).toContain('Art. 33(3)(c)');
      expect(text).toContain('Art. 33(3)(d)');
      expect(text).toContain('dpo@acme.example');
      expect(text).toContain('Approximate number: 2, of whom 2 had data given out');
      expect(text).toContain('Approximate number of records: 2');
      expect(text).toContain(text === d.authority.html ? keyId : keyId.replace('_', '\\_'));
      expect(text).not.toContain('PCI DSS');
      expect(text).not.toContain('Reasons for the delay');
    }
    expect(d.authority.html).not.toMatch(/<script|<img/);
    expect(d.authority.markdown).not.toMatch(/(^|[^\\])<(script|img)/m);
    expect(d.authority.markdown).toContain('\\# Not a heading');
    expect(d.customers.html).not.toMatch(/<script|<img/);
    expect(d.customers.markdown).toContain('contact details (email address, phone number)');
    expect(d.customers.markdown).toContain('Be wary of emails');
    // The recorded steps come from the timeline.
    expect(d.authority.markdown).toMatch(/open → contained/);
    const audited = await f.db.selectFrom('audit_log').select('outcome').where('action', '=', 'incidents.drafted').where('record_id', '=', incident.id).execute();
    expect(audited).toEqual([{ outcome: 'success' }]);
  });

  it('past 72 hours: the authority draft asks for the reasons for the delay; without a scope it says what to complete', async () => {
    const incident = await f.incidents.open(CLI_OPERATOR, { title: 'Late', severity: 'low', aware_at: new Date(f.clock.now().getTime() - 73 * 3_600_000).toISOString() });
    const d = await f.incidents.drafts(CLI_OPERATOR, incident.id);
    expect(d.authority.markdown).toContain('Reasons for the delay');
    expect(d.authority.markdown).toContain('\\[to complete: the scope');
    expect(d.authority.html).toContain('[to complete: the scope');
  });

  it('a card incident adds the acquirer and card brands step (PCI DSS 12.10.1)', async () => {
    const token = `tok_${newId('x').slice(2)}`;
    await f.audit.append({
      actor: key.ref,
      action: 'cards.read',
      subjectId: customers[0]!,
      collection: 'cards',
      recordId: token,
      fields: ['exp_month', 'exp_year', 'cardholder_name', 'origin.203.0.113.9'],
      purpose: 'payments',
      outcome: 'success',
    });
    f.clock.advance(1000);
    const incident = await f.incidents.open(CLI_OPERATOR, { title: 'Payments key leaked', severity: 'critical', scope: scope() });
    const r = await f.incidents.blastRadius(CLI_OPERATOR, incident.id);
    expect(r.cards).toMatchObject({ involved: true, records: 1, reveals: 0 });
    // The request's origin marker is not card data.
    expect(r.fields.filter((x) => x.collection === 'cards').map((x) => x.field)).toEqual(['cardholder_name', 'exp_month', 'exp_year']);
    const d = await f.incidents.drafts(CLI_OPERATOR, incident.id);
    for (const text of [d.authority.markdown, d.authority.html]) {
      expect(text).toContain('PCI DSS 4.0.1 12.10.1');
      expect(text).toContain('acquirer');
    }
    expect(d.customers.markdown).toContain('Check your card statements');
  });

  it('all fields protected: the data subjects need not be told (Art. 34(3)(a))', async () => {
    const writer: Actor = { ref: `apikey:${newId('key')}`, kind: 'apikey', purposes: ['account'] };
    await f.vault.create({ actor: writer, purpose: 'account', requestId: 'w' }, 'orders', customers[1]!, { number: 'SO-9', placed_at: '2026-03-01T09:00:00Z', currency: 'EUR', total: '5.00', status: 'paid' });
    f.clock.advance(1000);
    const incident = await f.incidents.open(CLI_OPERATOR, {
      title: 'Order-writing key leaked',
      severity: 'medium',
      scope: { actor: { kind: 'apikey', id: writer.ref.slice('apikey:'.length) }, from: new Date(f.clock.now().getTime() - 60_000).toISOString() },
    });
    const d = await f.incidents.drafts(CLI_OPERATOR, incident.id);
    expect(d.authority.markdown).toContain('need not be told');
  });
});
