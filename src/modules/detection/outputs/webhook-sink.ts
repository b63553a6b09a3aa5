import type { Clock } from '../../../kernel/clock.ts';
import { systemClock } from '../../../kernel/clock.ts';
import type { Logger } from '../../../kernel/logger.ts';
import { createWebhookDelivery } from '../../../http/webhook-delivery.ts';
import type { AlertSink } from '../contracts.ts';
import { ALERT_EVENT_TYPE, alertMessageId } from './alert-message.ts';

/**
 * Alerts to the shop's endpoint (CUSTOS_ALERT_WEBHOOK_URL) as Standard Webhooks signed with
 * CUSTOS_ALERT_WEBHOOK_SECRET: body `{ "type": "security.alert", "timestamp", "data": <alert> }`.
 * `send` retries by itself (src/http/webhook-delivery.ts: 5 s, 30 s, 2 min, 10 min, 30 min) and
 * throws only once it gives up, so a caller must not retry it again.
 */
export function createWebhookAlertSink(deps: {
  url: string;
  keys: readonly Buffer[];
  caFile?: string | undefined;
  clock?: Clock | undefined;
  logger?: Logger | undefined;
  retryDelaysMs?: readonly number[] | undefined;
  timeoutMs?: number | undefined;
}): AlertSink {
  const clock = deps.clock ?? systemClock;
  const delivery = createWebhookDelivery(
    { url: deps.url, keys: deps.keys, caFile: deps.caFile },
    { clock, logger: deps.logger, label: 'alerts', retryDelaysMs: deps.retryDelaysMs, timeoutMs: deps.timeoutMs },
  );
  return {
    name: 'webhook',
    async send(alert) {
      await delivery.send(ALERT_EVENT_TYPE, alert, { id: alertMessageId(alert), timestamp: clock.now() });
    },
    async close() {
      delivery.close();
    },
  };
}
