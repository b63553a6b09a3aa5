import type { Alert } from '../../contracts.ts';

/** An alert as the engine would hand it to the outputs (no personal data, by the contract). */
export const sampleAlert: Alert = {
  id: 'alr_01JTESTALERT0000000000000',
  rule: 'bulk_read',
  severity: 'high',
  status: 'open',
  title: 'Bulk read by API key "reporting"',
  actor: { kind: 'apikey', id: 'key_01JTESTKEY00000000000000', name: 'reporting' },
  source: '203.0.113.7',
  count: 812,
  detail: { distinct_customers: 812, window_minutes: 5, threshold: 200 },
  actions: ['lock_apikey'],
  first_seen: '2026-05-01T09:55:00.000Z',
  last_seen: '2026-05-01T09:55:00.000Z',
  acknowledged_by: null,
  acknowledged_at: null,
  closed_by: null,
  closed_at: null,
  note: null,
};
