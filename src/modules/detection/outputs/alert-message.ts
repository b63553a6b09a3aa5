import type { Alert } from '../contracts.ts';

/**
 * What every alert output sends: the Standard Webhooks payload shape `{ "type", "timestamp",
 * "data" }` with the alert as `data` (webhook body, NATS message), and one message id per state of
 * an alert, so that a receiver can drop a repeat of the same state (Standard Webhooks `webhook-id`,
 * JetStream `Nats-Msg-Id`).
 */
export const ALERT_EVENT_TYPE = 'security.alert';

export function alertPayload(alert: Alert, at: Date): { type: string; timestamp: string; data: Alert } {
  return { type: ALERT_EVENT_TYPE, timestamp: at.toISOString(), data: alert };
}

/** `msg_<alert id>_<status>_<count>_<last seen, Unix ms>`: the same for a re-sent alert, new once it grows or changes status. */
export function alertMessageId(alert: Alert): string {
  const id = alert.id.replace(/[^A-Za-z0-9_-]/g, '').slice(0, 64);
  return `msg_${id}_${alert.status}_${alert.count}_${Date.parse(alert.last_seen) || 0}`;
}
