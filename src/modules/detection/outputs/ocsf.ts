import { isIP } from 'node:net';
import type { SecurityEvent } from '../../../kernel/security-events.ts';
import type { Alert, AlertActor, Severity } from '../contracts.ts';

/**
 * Security events and alerts as OCSF records, so a shop's SIEM reads them without a custom parser.
 * One schema version is pinned, 1.3.0, and four classes are used:
 *
 * | what | OCSF class |
 * |---|---|
 * | sign-ins, sign-in failures, sessions (`identity.authn_login_*`, `identity.session_*`, …) | Authentication (3002) |
 * | lockouts, suspensions, API-key locks, password and factor changes, accounts and keys created or removed | Account Change (3001) |
 * | everything else: reads, lookups, reveals, relays, writes, policy denials (`vault.*`, `cards.*`, `staff.access.*`, …) | API Activity (6003) |
 * | alerts | Detection Finding (2004) |
 *
 * `type_uid` is `class_uid * 100 + activity_id`; `time` is milliseconds since the epoch; the
 * audit action name is `metadata.event_code`. An IPv6 source is a /64 prefix (`sourceOf`), which
 * is no address, so it goes in `src_endpoint.uid`; an IPv4 source in `src_endpoint.ip`. Field
 * names, purpose and the event's non-personal details go in `unmapped`. Both functions are pure:
 * the record holds what the event or alert holds, nothing more (no values of personal data).
 */
export const OCSF_VERSION = '1.3.0';

export type OcsfRecord = Record<string, unknown>;

const PRODUCT = { name: 'Custos', vendor_name: 'Custos' } as const;

interface OcsfClass {
  readonly uid: number;
  readonly name: string;
  readonly categoryUid: number;
  readonly category: string;
  readonly activities: Readonly<Record<number, string>>;
}

const OTHER = { 0: 'Unknown', 99: 'Other' } as const;
const CLASSES = {
  accountChange: {
    uid: 3001,
    name: 'Account Change',
    categoryUid: 3,
    category: 'Identity & Access Management',
    activities: { ...OTHER, 1: 'Create', 2: 'Enable', 3: 'Password Change', 4: 'Password Reset', 5: 'Disable', 6: 'Delete', 9: 'Lock', 10: 'MFA Factor Enable', 11: 'MFA Factor Disable' },
  },
  authentication: {
    uid: 3002,
    name: 'Authentication',
    categoryUid: 3,
    category: 'Identity & Access Management',
    activities: { ...OTHER, 1: 'Logon', 2: 'Logoff' },
  },
  apiActivity: { uid: 6003, name: 'API Activity', categoryUid: 6, category: 'Application Activity', activities: { ...OTHER, 1: 'Create', 2: 'Read', 3: 'Update', 4: 'Delete' } },
  detectionFinding: { uid: 2004, name: 'Detection Finding', categoryUid: 2, category: 'Findings', activities: { ...OTHER, 1: 'Create', 2: 'Update', 3: 'Close' } },
} as const satisfies Record<string, OcsfClass>;

const SEVERITY_NAMES: Readonly<Record<number, string>> = { 0: 'Unknown', 1: 'Informational', 2: 'Low', 3: 'Medium', 4: 'High', 5: 'Critical', 6: 'Fatal', 99: 'Other' };
const ALERT_SEVERITY: Readonly<Record<Severity, number>> = { low: 2, medium: 3, high: 4, critical: 5 };

/** The fields every record starts with (base event: classification, occurrence, metadata). */
function base(cls: OcsfClass, activityId: number, time: number, severityId: number, eventCode: string, correlation?: string | null): OcsfRecord {
  const activity = cls.activities[activityId] ?? 'Other';
  return {
    category_uid: cls.categoryUid,
    category_name: cls.category,
    class_uid: cls.uid,
    class_name: cls.name,
    activity_id: activityId,
    activity_name: activity,
    type_uid: cls.uid * 100 + activityId,
    type_name: `${cls.name}: ${activity}`,
    severity_id: severityId,
    severity: SEVERITY_NAMES[severityId],
    time,
    metadata: {
      version: OCSF_VERSION,
      product: PRODUCT,
      log_name: 'security',
      event_code: eventCode,
      ...(correlation === undefined || correlation === null ? {} : { correlation_uid: correlation }),
    },
  };
}

/** An OCSF user for a Custos id, by its prefix. */
function userOfId(id: string): OcsfRecord {
  if (id.startsWith('key_')) return { uid: id, credential_uid: id, type_id: 99, type: 'API key' };
  if (id.startsWith('stf_')) return { uid: id, type_id: 99, type: 'Staff' };
  if (id.startsWith('cus_') || id.startsWith('acc_')) return { uid: id, type_id: 1, type: 'User' };
  return { uid: id, type_id: 0, type: 'Unknown' };
}

const UNKNOWN_USER = { name: 'unknown', type_id: 0, type: 'Unknown' } as const;

/** An event's actor string (`apikey:key_…`, `staff:stf_…`, `account:acc_…`, `customer:cus_…`, `cli`, `system`, `anonymous`). */
function userOfActor(actor: string | null | undefined): OcsfRecord {
  if (actor === undefined || actor === null || actor === '' || actor === 'anonymous') return UNKNOWN_USER;
  if (actor === 'cli' || actor === 'system') return { name: actor, type_id: 3, type: 'System' };
  const [kind = '', id = ''] = actor.split(':', 2);
  if (id === '') return { name: actor, type_id: 0, type: 'Unknown' };
  if (kind === 'apikey') return { uid: id, credential_uid: id, type_id: 99, type: 'API key' };
  if (kind === 'staff') return { uid: id, type_id: 99, type: 'Staff' };
  if (kind === 'customer' || kind === 'account') return { uid: id, type_id: 1, type: 'User' };
  return { uid: id, type_id: 0, type: 'Unknown' };
}

function userOfAlertActor(actor: AlertActor): OcsfRecord {
  const named = actor.name === undefined || actor.name === null ? {} : { name: actor.name };
  if (actor.kind === 'apikey') return { uid: actor.id, credential_uid: actor.id, type_id: 99, type: 'API key', ...named };
  if (actor.kind === 'staff') return { uid: actor.id, type_id: 99, type: 'Staff', ...named };
  if (actor.kind === 'customer') return { uid: actor.id, type_id: 1, type: 'User', ...named };
  if (actor.kind === 'system') return { uid: actor.id, type_id: 3, type: 'System', ...named };
  return { uid: actor.id, type_id: 0, type: 'Unknown', ...named };
}

/** The account an authentication or account change is about: the record changed, else the subject, else the actor. */
function targetUser(e: SecurityEvent): OcsfRecord {
  if (e.recordId !== undefined && e.recordId !== null && (e.collection === 'staff_members' || e.recordId.startsWith('key_') || e.recordId.startsWith('stf_')))
    return e.collection === 'staff_members' ? { uid: e.recordId, type_id: 99, type: 'Staff' } : userOfId(e.recordId);
  if (e.subjectId !== undefined && e.subjectId !== null && e.subjectId !== '') return userOfId(e.subjectId);
  return userOfActor(e.actor);
}

/** Where the request came from: an IPv4 address, an IPv6 /64, or the local process. */
function endpointOf(e: SecurityEvent): OcsfRecord {
  const source = e.source ?? null;
  if (source !== null && source !== '') return isIP(source) !== 0 ? { ip: source } : { uid: source };
  if (e.actor === 'cli' || e.actor === 'system') return { name: `custos ${e.actor}` };
  return { name: 'unknown' };
}

const ACCOUNT_CHANGES: Readonly<Record<string, number>> = {
  'identity.authn_login_lock': 9,
  'identity.authn_password_change': 3,
  'identity.authn_password_change_fail': 3,
  'identity.authn_mfa_enabled': 10,
  'identity.authn_mfa_disabled': 11,
  'identity.user_created': 1,
  'identity.user_deleted': 6,
  'staff.member.create': 1,
  'staff.member.suspend': 5,
  'staff.member.reactivate': 2,
  'apikey.create': 1,
  'apikey.revoke': 6,
};

/** Locks and suspensions named by other modules (`apikey.lock`, `detection.action.lock_apikey`, `…suspend`), and their undoing. */
function accountChangeByVerb(action: string): number | undefined {
  const verb = action.slice(action.lastIndexOf('.') + 1);
  if (/^lock(_[a-z]+)?$/.test(verb)) return 9;
  if (/^suspend(_[a-z]+)?$/.test(verb)) return 5;
  if (/^(unlock|unsuspend|reactivate|reinstate|resume)(_[a-z]+)?$/.test(verb)) return 2;
  return undefined;
}

function authenticationActivity(action: string): number | undefined {
  if (!action.startsWith('identity.') && !action.startsWith('auth.')) return undefined;
  const name = action.slice(action.indexOf('.') + 1);
  if (action.startsWith('auth.') || name.startsWith('authn_login_') || name === 'session_created' || name === 'authn_token_reuse' || name === 'session_use_after_expire')
    return 1;
  if (name === 'session_expired' || name === 'session_revoked') return 2;
  if (name.startsWith('authn_') || name.startsWith('session_')) return 99;
  return undefined;
}

const API_VERBS: readonly [RegExp, number][] = [
  [/^(create|tokenise|tokenize|add|define|invite|plant|open)$/, 1],
  [/^(read|lookup|reveal|export|list|get|relay|search|download)$/, 2],
  [/^(update|change|role|rotate|reseal|rekey|approve|deny|accept|ack|acknowledge|close|complete|grant|revoke)$/, 3],
  [/^(delete|remove|expire|erase|destroy|retire|purge|sweep)$/, 4],
];

/** Read, create, update or delete from the action's words, last word first (`vault.read.no_consent` → Read). */
function apiActivity(action: string): number {
  const words = action.split('.').reverse();
  for (const word of words) for (const [pattern, id] of API_VERBS) if (pattern.test(word)) return id;
  return 99;
}

/** Informational for success, Low for a failure or denial, more for what points at an attack. */
function eventSeverity(e: SecurityEvent, accountChange: number | undefined): number {
  const failed = e.outcome !== 'success';
  if (e.action.startsWith('audit.verify') && failed) return 5;
  if (e.action === 'identity.authn_token_reuse' || e.action.startsWith('vault.integrity.')) return 4;
  if (e.action === 'identity.authn_login_lock' || e.action === 'identity.authn_login_fail_max' || e.action === 'identity.authn_impossible_travel') return 3;
  if (accountChange === 9 || accountChange === 5) return 3;
  return failed ? 2 : 1;
}

function unmappedOf(e: SecurityEvent): OcsfRecord | undefined {
  const out: OcsfRecord = { outcome: e.outcome };
  if (e.purpose !== undefined && e.purpose !== null) out.purpose = e.purpose;
  if (e.fields !== undefined && e.fields.length > 0) out.fields = [...e.fields];
  if (e.detail !== undefined && Object.keys(e.detail).length > 0) out.detail = { ...e.detail };
  return out;
}

/** One security event as an OCSF 1.3.0 record (Authentication, Account Change or API Activity). */
export function toOcsf(event: SecurityEvent): OcsfRecord {
  const time = event.at.getTime();
  const accountChange = ACCOUNT_CHANGES[event.action] ?? accountChangeByVerb(event.action);
  const authentication = accountChange === undefined ? authenticationActivity(event.action) : undefined;
  const severity = eventSeverity(event, accountChange);
  const status = event.outcome === 'success' ? { status_id: 1, status: 'Success' } : { status_id: 2, status: 'Failure', status_detail: event.outcome };
  const message = `${event.action}: ${event.outcome}`;
  const actor = event.actor === undefined || event.actor === null ? undefined : { user: userOfActor(event.actor) };
  const source = event.source === undefined || event.source === null ? undefined : endpointOf(event);

  if (accountChange !== undefined)
    return {
      ...base(CLASSES.accountChange, accountChange, time, severity, event.action, event.requestId),
      ...status,
      message,
      user: targetUser(event),
      ...(actor === undefined ? {} : { actor }),
      ...(source === undefined ? {} : { src_endpoint: source }),
      unmapped: unmappedOf(event),
    };
  if (authentication !== undefined)
    return {
      ...base(CLASSES.authentication, authentication, time, severity, event.action, event.requestId),
      ...status,
      message,
      user: targetUser(event),
      service: { name: 'Custos' },
      ...(actor === undefined ? {} : { actor }),
      ...(source === undefined ? {} : { src_endpoint: source }),
      unmapped: unmappedOf(event),
    };
  const module = event.action.slice(0, Math.max(0, event.action.indexOf('.'))) || event.action;
  const resource =
    event.collection === undefined || event.collection === null
      ? undefined
      : {
          type: event.collection,
          ...(event.recordId === undefined || event.recordId === null ? {} : { uid: event.recordId }),
          ...(event.subjectId === undefined || event.subjectId === null ? {} : { owner: userOfId(event.subjectId) }),
        };
  return {
    ...base(CLASSES.apiActivity, apiActivity(event.action), time, severity, event.action, event.requestId),
    ...status,
    message,
    actor: actor ?? { user: UNKNOWN_USER },
    api: {
      operation: event.action,
      service: { name: `Custos ${module}` },
      ...(event.requestId === undefined || event.requestId === null ? {} : { request: { uid: event.requestId } }),
    },
    src_endpoint: endpointOf(event),
    ...(resource === undefined ? {} : { resources: [resource] }),
    unmapped: unmappedOf(event),
  };
}

const FINDING_STATUS = { open: [1, 'New'], acknowledged: [2, 'In Progress'], closed: [4, 'Resolved'] } as const;

/**
 * An alert as an OCSF 1.3.0 Detection Finding: Create when new, Update once it has grown or been
 * acknowledged, Close when closed. The actor and source are its evidence; the rule is the analytic.
 */
export function alertToOcsf(alert: Alert): OcsfRecord {
  const activity = alert.status === 'closed' ? 3 : alert.status === 'acknowledged' || alert.last_seen !== alert.first_seen ? 2 : 1;
  const firstSeen = Date.parse(alert.first_seen);
  const lastSeen = Date.parse(alert.last_seen);
  const time = Date.parse(alert.closed_at ?? alert.acknowledged_at ?? alert.last_seen);
  const [statusId, status] = FINDING_STATUS[alert.status];
  const evidence: OcsfRecord = {};
  if (alert.actor !== null) evidence.actor = { user: userOfAlertActor(alert.actor) };
  if (alert.source !== null) evidence.src_endpoint = isIP(alert.source) !== 0 ? { ip: alert.source } : { uid: alert.source };
  const unmapped: OcsfRecord = { rule: alert.rule, actions: [...alert.actions] };
  if (Object.keys(alert.detail).length > 0) unmapped.detail = { ...alert.detail };
  if (alert.acknowledged_by !== null) unmapped.acknowledged_by = alert.acknowledged_by;
  if (alert.closed_by !== null) unmapped.closed_by = alert.closed_by;
  return {
    ...base(CLASSES.detectionFinding, activity, time, ALERT_SEVERITY[alert.severity], `detection.${alert.rule}`),
    status_id: statusId,
    status,
    message: alert.title,
    count: alert.count,
    start_time: firstSeen,
    end_time: lastSeen,
    finding_info: {
      uid: alert.id,
      title: alert.title,
      types: [alert.rule],
      analytic: { uid: alert.rule, name: alert.rule, type_id: 1, type: 'Rule' },
      created_time: firstSeen,
      first_seen_time: firstSeen,
      last_seen_time: lastSeen,
      modified_time: time,
    },
    ...(Object.keys(evidence).length === 0 ? {} : { evidences: [evidence] }),
    ...(alert.note === null ? {} : { comment: alert.note }),
    unmapped,
  };
}
