import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { auditEntrySchema, plainlyValid, type AuditEntryInput } from './schema.ts';

/**
 * Entries are checked by a direct test of the schema's patterns on the hot path, and by the Zod
 * schema only when that says no. The two must agree: whatever the direct test accepts, the schema
 * accepts, and whatever the schema accepts, the direct test accepts (else the fast path is idle).
 */
const piece = fc.oneof(
  fc.constantFrom('apikey:key_01', 'vault.read', 'customers', 'support', 'cus_01J', 'email', 'addresses.city', 'success', 'denied'),
  fc.string({ maxLength: 12 }),
  fc.constantFrom('ada@example.com', 'Ada Lovelace', '', ' ', 'a'.repeat(200), 'x:y:z', 'A.b'),
);
const entry: fc.Arbitrary<AuditEntryInput> = fc.record(
  {
    actor: piece,
    action: piece,
    subjectId: fc.option(piece),
    collection: fc.option(piece),
    recordId: fc.option(piece),
    fields: fc.array(piece, { maxLength: 4 }),
    purpose: fc.option(piece),
    outcome: fc.constantFrom('success', 'denied', 'failure', 'maybe') as fc.Arbitrary<AuditEntryInput['outcome']>,
    requestId: fc.option(piece),
  },
  { requiredKeys: ['actor', 'action', 'outcome'] },
);

describe('audit entry validation', () => {
  it('the direct check and the Zod schema agree on every entry', () => {
    fc.assert(
      fc.property(entry, (e) => {
        expect(plainlyValid(e)).toBe(auditEntrySchema.safeParse(e).success);
      }),
      { numRuns: 2000 },
    );
  });

  it('refuses personal values in any field, directly', () => {
    const base: AuditEntryInput = { actor: 'apikey:key_1', action: 'vault.read', outcome: 'success' };
    expect(plainlyValid(base)).toBe(true);
    expect(plainlyValid({ ...base, fields: ['ada@example.com'] })).toBe(false);
    expect(plainlyValid({ ...base, purpose: 'Ada Lovelace' })).toBe(false);
    expect(plainlyValid({ ...base, subjectId: '+44 20 7946 0958' })).toBe(false);
    expect(plainlyValid({ ...base, fields: new Array<string>(257).fill('email') })).toBe(false);
  });
});
