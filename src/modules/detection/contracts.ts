/**
 * The shapes detection shares with its outputs (outputs/), the incident register
 * (src/modules/incidents) and posture (src/modules/posture). Owned here so that each can be built
 * against it alone.
 */
export type Severity = 'low' | 'medium' | 'high' | 'critical';
export type AlertStatus = 'open' | 'acknowledged' | 'closed';

/**
 * Who an alert is about: an API key by id and name, a staff member, a customer, a sign-in account
 * (`account`: identity's account id, the target of a brute force), a source, or the whole service.
 */
export interface AlertActor {
  readonly kind: 'apikey' | 'staff' | 'customer' | 'account' | 'source' | 'system';
  readonly id: string;
  readonly name?: string | null;
}

/** An alert as the API answers it and as every output sends it (webhook body `data`, mail, NATS). */
export interface Alert {
  readonly id: string;
  /** The rule's id, e.g. `credential_stuffing`, `honeytoken`, `bulk_read`. */
  readonly rule: string;
  readonly severity: Severity;
  readonly status: AlertStatus;
  readonly title: string;
  readonly actor: AlertActor | null;
  readonly source: string | null;
  /** Events that matched, and the window's figures (distinct customers, failures, …); never personal data. */
  readonly count: number;
  readonly detail: Readonly<Record<string, string | number | boolean | null>>;
  /** Actions taken by the rule's response: `lock_apikey`, `lock_account`, `block_source`, `require_step_up`. */
  readonly actions: readonly string[];
  readonly first_seen: string;
  readonly last_seen: string;
  readonly acknowledged_by: string | null;
  readonly acknowledged_at: string | null;
  readonly closed_by: string | null;
  readonly closed_at: string | null;
  readonly note: string | null;
}

/** An alert output (signed webhook, SMTP mail, NATS subject). `send` retries transient failures itself (outputs/) and throws once it gives up; the caller logs (outputs/index.ts `dispatchAlert`) and does not retry again. */
export interface AlertSink {
  readonly name: string;
  send(alert: Alert): Promise<void>;
  close(): Promise<void>;
}

/** Security events and alerts as OCSF JSON lines, to a file or to syslog. */
export interface OcsfSink {
  /** `record` is an OCSF object (outputs/ocsf.ts maps events and alerts to it). Never blocks the caller. */
  write(record: Readonly<Record<string, unknown>>): void;
  close(): Promise<void>;
}

/** What the incident register needs of an alert. */
export interface AlertLookup {
  get(id: string): Promise<Alert | undefined>;
}
