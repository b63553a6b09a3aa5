import { describe, expect, it } from 'vitest';
import { CLI_OPERATOR } from './ports.ts';
import { codeOf, staffFixture } from './test-support/fixture.ts';

describe('a shorter validity period', () => {
  it('takes the number of months as a parameter', async () => {
    const g = await staffFixture({ start: new Date('2025-01-31T12:00:00.000Z'), validityMonths: 1 });
    try {
      const customer = await g.customer();
      const agent = await g.member('support_agent');
      const { expiresOn } = await g.staff.training.recordCompletion(CLI_OPERATOR, { memberId: agent.id, course: 'security_awareness', completedOn: '2025-01-31' });
      expect(expiresOn).toBe('2025-02-28');
      g.clock.set(new Date('2025-02-27T23:59:59.000Z'));
      expect((await g.read(agent.id, 'support', customer)).name).toBe('Ada Lovelace');
      g.clock.set(new Date('2025-02-28T00:00:00.000Z'));
      expect(await codeOf(g.read(agent.id, 'support', customer))).toBe('STAFF_TRAINING_REQUIRED');
    } finally {
      await g.close();
    }
  });
});
