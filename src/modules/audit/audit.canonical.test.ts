import { generateKeyPairSync } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { chainHash, checkpointSignatureValid, entryMac, entryText, macMatches, signCheckpoint, type EntryColumns } from './canonical.ts';
import { testAuditKeys } from './testing.ts';

const keys = testAuditKeys();
const text = fc.string({ maxLength: 12 });
const columns: fc.Arbitrary<EntryColumns> = fc.record({
  nonce: text,
  at: text,
  actor: text,
  action: text,
  subject_id: fc.option(text),
  collection: fc.option(text),
  record_id: fc.option(text),
  fields: text,
  purpose: fc.option(text),
  outcome: text,
  request_id: fc.option(text),
});

describe('canonical audit encoding', () => {
  it('two different entries never share a canonical text (so never a MAC)', () => {
    fc.assert(
      fc.property(columns, columns, (a, b) => {
        const same = JSON.stringify(Object.entries(a).sort()) === JSON.stringify(Object.entries(b).sort());
        expect(entryText(a) === entryText(b)).toBe(same);
      }),
    );
  });

  it('a MAC verifies for its entry under its key only; any changed column fails it', () => {
    const other = testAuditKeys();
    fc.assert(
      fc.property(columns, fc.constantFrom<keyof EntryColumns>('nonce', 'at', 'actor', 'fields', 'subject_id', 'purpose'), (e, col) => {
        const t = entryText(e);
        const mac = entryMac(keys.auditMac, t);
        expect(macMatches(keys.auditMac, t, mac)).toBe(true);
        expect(macMatches(other.auditMac, t, mac)).toBe(false);
        const changed = { ...e, [col]: `${e[col] ?? ''}~` };
        expect(macMatches(keys.auditMac, entryText(changed), mac)).toBe(false);
        expect(macMatches(keys.auditMac, t, mac.slice(0, 62))).toBe(false);
        expect(macMatches(keys.auditMac, t, mac.toUpperCase())).toBe(!/[a-f]/.test(mac));
      }),
    );
  });

  it('the chain hash binds position, row id and MAC', () => {
    fc.assert(
      fc.property(columns, fc.integer({ min: 1, max: 1e9 }), fc.integer({ min: 1, max: 1e9 }), (e, seq, id) => {
        const t = entryText(e);
        const mac = entryMac(keys.auditMac, t);
        const h = chainHash('0'.repeat(64), seq, id, mac, t);
        expect(chainHash('0'.repeat(64), seq + 1, id, mac, t)).not.toBe(h);
        expect(chainHash('0'.repeat(64), seq, id + 1, mac, t)).not.toBe(h);
        expect(chainHash('1'.repeat(64), seq, id, mac, t)).not.toBe(h);
      }),
    );
  });

  it('a checkpoint signature covers seq, hash, key id and time; another key cannot make one', () => {
    const cp = { seq: 42, hash: 'a'.repeat(64), key_id: keys.auditSigning.keyId, at: '2026-01-01T00:00:00.000Z' };
    const sig = signCheckpoint(keys.auditSigning.privateKey, cp);
    expect(checkpointSignatureValid(keys.auditSigning.publicKey, cp, sig)).toBe(true);
    expect(checkpointSignatureValid(keys.auditSigning.publicKey, { ...cp, seq: 43 }, sig)).toBe(false);
    expect(checkpointSignatureValid(keys.auditSigning.publicKey, { ...cp, hash: 'b'.repeat(64) }, sig)).toBe(false);
    expect(checkpointSignatureValid(keys.auditSigning.publicKey, { ...cp, at: '2026-01-02T00:00:00.000Z' }, sig)).toBe(false);
    const forged = signCheckpoint(generateKeyPairSync('ed25519').privateKey, cp);
    expect(checkpointSignatureValid(keys.auditSigning.publicKey, cp, forged)).toBe(false);
    expect(checkpointSignatureValid(keys.auditSigning.publicKey, cp, 'not-a-signature')).toBe(false);
  });
});
