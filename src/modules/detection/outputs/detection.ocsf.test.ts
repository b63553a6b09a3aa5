import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { SecurityEvent } from '../../../kernel/security-events.ts';
import { alertToOcsf, OCSF_VERSION, toOcsf } from './ocsf.ts';
import { OCSF_SCHEMA, ocsfClassOf, ocsfProblems } from './test-support/ocsf-schema.ts';
import { sampleAlert } from './test-support/sample-alert.ts';

const at = new Date('2026-05-01T10:00:00.123Z');
const event = (e: Partial<SecurityEvent> & Pick<SecurityEvent, 'action'>): SecurityEvent => ({ at, outcome: 'success', ...e });
const valid = (record: Record<string, unknown>) => expect(ocsfProblems(record, ocsfClassOf(record))).toEqual([]);


describe('the OCSF checker', () => {
  it('finds what a record lacks or adds (so the checks below can fail)', () => {
    const record = toOcsf(event({ action: 'identity.authn_login_fail', outcome: 'failure' }));
    const { user: _user, ...withoutUser } = record;
    expect(ocsfProblems(withoutUser, 'authentication')).toContain('.user: required');
    expect(ocsfProblems({ ...record, colour: 'red' }, 'authentication')).toContain('.colour: not an attribute of this class');
    expect(ocsfProblems({ ...record, type_uid: 300299 }, 'authentication')).toContain('type_uid must be class_uid * 100 + activity_id');
    expect(ocsfProblems({ ...record, activity_id: 7, type_uid: 300207 }, 'authentication')[0]).toMatch(/activity_id: 7 is not one of/);
    expect(ocsfProblems({ ...record, src_endpoint: { ip: '2001:db8::/64' } }, 'authentication')).toContain('.src_endpoint.ip: must be an IP address');
    expect(ocsfProblems({ ...record, metadata: { product: { name: 'Custos' }, version: '1.3.0' } }, 'authentication')).toContain('.metadata.product.vendor_name: required');
  });

  it('holds the pinned version and the four classes with their uids', () => {
    expect(OCSF_SCHEMA.version).toBe(OCSF_VERSION);
    expect(Object.fromEntries(Object.entries(OCSF_SCHEMA.classes).map(([n, d]) => [n, d.class_uid]))).toEqual({
      authentication: 3002,
      api_activity: 6003,
      detection_finding: 2004,
      account_change: 3001,
    });
  });
});

describe('security events as OCSF 1.3.0', () => {
  const cases: [Partial<SecurityEvent> & Pick<SecurityEvent, 'action'>, string, number, number][] = [
    [{ action: 'identity.authn_login_fail', outcome: 'failure', source: '198.51.100.4' }, 'authentication', 1, 2],
    [{ action: 'identity.authn_login_success', actor: 'account:acc_1', subjectId: 'cus_1' }, 'authentication', 1, 1],
    [{ action: 'identity.authn_token_reuse', outcome: 'denied' }, 'authentication', 1, 4],
    [{ action: 'identity.session_revoked', subjectId: 'cus_1' }, 'authentication', 2, 1],
    [{ action: 'identity.authn_token_created' }, 'authentication', 99, 1],
    [{ action: 'identity.authn_login_lock', subjectId: 'cus_1', actor: 'system' }, 'account_change', 9, 3],
    [{ action: 'identity.authn_mfa_disabled', subjectId: 'cus_1' }, 'account_change', 11, 1],
    [{ action: 'staff.member.suspend', actor: 'staff:stf_admin', subjectId: 'stf_2', collection: 'staff_members', recordId: 'stf_2' }, 'account_change', 5, 3],
    [{ action: 'staff.member.reactivate', actor: 'staff:stf_admin', subjectId: 'stf_2', collection: 'staff_members', recordId: 'stf_2' }, 'account_change', 2, 1],
    [{ action: 'apikey.lock', actor: 'system', recordId: 'key_1' }, 'account_change', 9, 3],
    [{ action: 'detection.action.lock_apikey', actor: 'system', recordId: 'key_1' }, 'account_change', 9, 3],
    [{ action: 'apikey.revoke', actor: 'cli', recordId: 'key_1' }, 'account_change', 6, 1],
    [{ action: 'vault.read', actor: 'apikey:key_1', collection: 'customers', recordId: 'cus_1', subjectId: 'cus_1', purpose: 'support', fields: ['email'], source: '2001:db8:1:2::/64' }, 'api_activity', 2, 1],
    [{ action: 'vault.read.no_consent', outcome: 'denied', actor: 'apikey:key_1', subjectId: 'cus_1' }, 'api_activity', 2, 2],
    [{ action: 'vault.create', actor: 'apikey:key_1', collection: 'customers', recordId: 'cus_2', subjectId: 'cus_2' }, 'api_activity', 1, 1],
    [{ action: 'cards.reveal', actor: 'staff:stf_1', collection: 'cards', recordId: 'tok_1' }, 'api_activity', 2, 1],
    [{ action: 'cards.relay', outcome: 'denied', actor: 'apikey:key_1', detail: { target_origin: 'https://evil.example' } }, 'api_activity', 2, 2],
    [{ action: 'staff.access.suspended', outcome: 'denied', actor: 'staff:stf_2' }, 'api_activity', 99, 2],
    [{ action: 'keys.rotate', actor: 'cli' }, 'api_activity', 3, 1],
    [{ action: 'vault.update', actor: 'apikey:key_1', subjectId: 'cus_1' }, 'api_activity', 3, 1],
    [{ action: 'retention.sweep', actor: 'system' }, 'api_activity', 4, 1],
    [{ action: 'audit.verify', outcome: 'failure', actor: 'cli' }, 'api_activity', 99, 5],
    [{ action: 'vault.integrity.blind_index_mismatch', outcome: 'failure', actor: 'apikey:key_1' }, 'api_activity', 99, 4],
  ];

  it.each(cases)('%j → %s, activity %i, severity %i', (input, className, activity, severity) => {
    const record = toOcsf(event(input));
    expect(ocsfProblems(record, className)).toEqual([]);
    expect(record).toMatchObject({ activity_id: activity, severity_id: severity, time: at.getTime(), metadata: { version: '1.3.0', event_code: input.action } });
    expect(record.status_id).toBe(input.outcome === undefined || input.outcome === 'success' ? 1 : 2);
  });

  it('names the source, the actor and the account as OCSF does', () => {
    const fail = toOcsf(event({ action: 'identity.authn_login_fail', outcome: 'failure', source: '198.51.100.4', actor: 'anonymous', requestId: 'req-1' }));
    expect(fail).toMatchObject({ src_endpoint: { ip: '198.51.100.4' }, user: { name: 'unknown', type_id: 0 }, service: { name: 'Custos' } });
    expect(fail.metadata).toMatchObject({ correlation_uid: 'req-1', product: { vendor_name: 'Custos', name: 'Custos' } });
    const read = toOcsf(event({ action: 'vault.read', actor: 'apikey:key_1', collection: 'customers', recordId: 'cus_1', subjectId: 'cus_1', purpose: 'support', fields: ['email', 'phone'], source: '2001:db8:1:2::/64', requestId: 'req-2' }));
    expect(read).toMatchObject({
      actor: { user: { uid: 'key_1', credential_uid: 'key_1', type: 'API key' } },
      api: { operation: 'vault.read', request: { uid: 'req-2' } },
      src_endpoint: { uid: '2001:db8:1:2::/64' },
      resources: [{ type: 'customers', uid: 'cus_1', owner: { uid: 'cus_1', type_id: 1 } }],
      unmapped: { outcome: 'success', purpose: 'support', fields: ['email', 'phone'] },
      type_uid: 600302,
      class_name: 'API Activity',
      type_name: 'API Activity: Read',
    });
    const lock = toOcsf(event({ action: 'identity.authn_login_lock', subjectId: 'cus_9' }));
    expect(lock).toMatchObject({ class_uid: 3001, type_uid: 300109, user: { uid: 'cus_9' }, activity_name: 'Lock' });
    const cli = toOcsf(event({ action: 'keys.rotate', actor: 'cli' }));
    expect(cli).toMatchObject({ src_endpoint: { name: 'custos cli' }, actor: { user: { name: 'cli', type_id: 3 } } });
  });

  const actions = fc.oneof(
    fc.constantFrom(
      'identity.authn_login_fail',
      'identity.authn_login_success',
      'identity.authn_login_lock',
      'identity.session_expired',
      'identity.authn_mfa_recovery_code_used',
      'vault.read',
      'vault.lookup',
      'cards.reveal',
      'cards.relay',
      'staff.access.mfa_required',
      'staff.member.suspend',
      'apikey.create',
      'auth.apikey_fail',
      'audit.verify',
    ),
    fc.array(fc.stringMatching(/^[a-z_]{1,12}$/), { minLength: 1, maxLength: 4 }).map((w) => w.join('.')),
  );
  const maybe = <T>(a: fc.Arbitrary<T>) => fc.option(a, { nil: undefined });
  const events = fc.record({
    at: fc.date({ min: new Date('2000-01-01'), max: new Date('2100-01-01'), noInvalidDate: true }),
    action: actions,
    outcome: fc.constantFrom('success', 'denied', 'failure'),
    actor: maybe(fc.oneof(fc.constantFrom('cli', 'system', 'anonymous', null), fc.tuple(fc.constantFrom('apikey', 'staff', 'account', 'customer', 'robot'), fc.stringMatching(/^[a-z]{3}_[0-9A-Z]{4}$/)).map(([k, id]) => `${k}:${id}`))),
    source: maybe(fc.oneof(fc.ipV4(), fc.constant('2001:db8:1:2::/64'), fc.constant(null))),
    subjectId: maybe(fc.oneof(fc.stringMatching(/^(cus|stf|key|acc|xyz)_[0-9A-Z]{4}$/), fc.constant(null))),
    collection: maybe(fc.oneof(fc.constantFrom('customers', 'cards', 'staff_members'), fc.constant(null))),
    recordId: maybe(fc.oneof(fc.stringMatching(/^(cus|stf|key|tok)_[0-9A-Z]{4}$/), fc.constant(null))),
    purpose: maybe(fc.constantFrom('support', 'payments', null)),
    fields: maybe(fc.array(fc.constantFrom('email', 'phone', 'name'), { maxLength: 3 })),
    requestId: maybe(fc.oneof(fc.uuid(), fc.constant(null))),
    detail: maybe(fc.dictionary(fc.stringMatching(/^[a-z_]{1,8}$/), fc.oneof(fc.string(), fc.integer(), fc.boolean(), fc.constant(null)))),
  });

  it('every event, whatever its action and parts, gives a valid record of one of the classes (property)', () => {
    fc.assert(
      fc.property(events, (e) => {
        const record = toOcsf(e as SecurityEvent);
        expect(['authentication', 'api_activity', 'account_change']).toContain(ocsfClassOf(record));
        valid(record);
      }),
      { numRuns: 500 },
    );
  });
});

describe('alerts as OCSF 1.3.0 Detection Findings', () => {
  it('a new alert is a Create, with the rule as analytic and the actor and source as evidence', () => {
    const record = alertToOcsf(sampleAlert);
    expect(ocsfProblems(record, 'detection_finding')).toEqual([]);
    expect(record).toMatchObject({
      class_uid: 2004,
      category_uid: 2,
      activity_id: 1,
      type_uid: 200401,
      severity_id: 4,
      status_id: 1,
      status: 'New',
      count: 812,
      time: Date.parse('2026-05-01T09:55:00.000Z'),
      message: sampleAlert.title,
      finding_info: { uid: sampleAlert.id, title: sampleAlert.title, analytic: { uid: 'bulk_read', type_id: 1 }, types: ['bulk_read'] },
      evidences: [{ actor: { user: { uid: 'key_01JTESTKEY00000000000000', name: 'reporting', type: 'API key' } }, src_endpoint: { ip: '203.0.113.7' } }],
      unmapped: { rule: 'bulk_read', actions: ['lock_apikey'], detail: { distinct_customers: 812 } },
    });
  });

  it('grows into an Update, and a closed alert is a Close with its note', () => {
    const grown = alertToOcsf({ ...sampleAlert, last_seen: '2026-05-01T09:58:00.000Z', count: 900, severity: 'critical' });
    expect(grown).toMatchObject({ activity_id: 2, type_uid: 200402, severity_id: 5, end_time: Date.parse('2026-05-01T09:58:00.000Z') });
    const acknowledged = alertToOcsf({ ...sampleAlert, status: 'acknowledged', acknowledged_by: 'staff:stf_1', acknowledged_at: '2026-05-01T10:05:00.000Z' });
    expect(acknowledged).toMatchObject({ activity_id: 2, status_id: 2, status: 'In Progress', time: Date.parse('2026-05-01T10:05:00.000Z') });
    const closed = alertToOcsf({ ...sampleAlert, status: 'closed', closed_by: 'staff:stf_1', closed_at: '2026-05-01T11:00:00.000Z', note: 'reporting job, expected' });
    expect(closed).toMatchObject({ activity_id: 3, type_uid: 200403, status_id: 4, status: 'Resolved', comment: 'reporting job, expected' });
    for (const r of [grown, acknowledged, closed]) valid(r);
    const bare = alertToOcsf({ ...sampleAlert, actor: null, source: null, severity: 'low', detail: {} });
    expect(bare.evidences).toBeUndefined();
    expect(bare.severity_id).toBe(2);
    valid(bare);
  });
});
