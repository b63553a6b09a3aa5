import type { Logger } from '../../../kernel/logger.ts';
import { withRetries } from '../../../kernel/retry.ts';
import type { Mailer, MailMessage } from '../../identity/mail/mailer.ts';
import type { Alert, AlertSink } from '../contracts.ts';

/**
 * Alerts by mail to the security contact (CUSTOS_ALERT_EMAIL), through the same mail transport as
 * every other mail (CUSTOS_SMTP_URL, CUSTOS_MAIL_FROM; without a mail server, the outbox folder).
 * Plain text: the rule, severity, actor, source, counts, actions taken and where to acknowledge
 * it. A refusal the server calls temporary (4xx) or a connection failure is retried after 5 s,
 * 30 s, 2 min and 10 min; a permanent refusal (5xx) is not. Logs name the failure, never the
 * addresses.
 */
export const MAIL_RETRY_DELAYS_MS: readonly number[] = [5_000, 30_000, 120_000, 600_000];

const oneLine = (text: string, max: number) => text.replace(/[\r\n\t]+/g, ' ').slice(0, max);

function actorLine(alert: Alert): string {
  if (alert.actor === null) return 'unknown';
  const kind = { apikey: 'API key', staff: 'staff member', customer: 'customer', account: 'sign-in account', source: 'source', system: 'system' }[alert.actor.kind];
  const name = alert.actor.name === undefined || alert.actor.name === null ? '' : ` ("${oneLine(alert.actor.name, 100)}")`;
  return `${kind} ${alert.actor.id}${name}`;
}

/** The mail for one alert: subject `[<shop>] <SEVERITY> security alert: <title>`. */
export function alertMail(alert: Alert, to: readonly string[], context: { shopName: string; publicUrl: string }): MailMessage {
  const details = Object.entries(alert.detail).map(([k, v]) => `  ${k}: ${String(v)}`);
  const text = [
    `Custos raised a ${alert.severity} security alert (${alert.status}).`,
    '',
    `Alert:        ${alert.id}`,
    `Rule:         ${alert.rule}`,
    `What:         ${oneLine(alert.title, 300)}`,
    `Actor:        ${actorLine(alert)}`,
    `Source:       ${alert.source ?? 'unknown'}`,
    `Events:       ${alert.count}`,
    `First seen:   ${alert.first_seen}`,
    `Last seen:    ${alert.last_seen}`,
    `Actions:      ${alert.actions.length === 0 ? 'none (alert only)' : alert.actions.join(', ')}`,
    ...(details.length === 0 ? [] : ['Figures:', ...details]),
    ...(alert.note === null ? [] : [`Note:         ${oneLine(alert.note, 500)}`]),
    '',
    `Review it at GET ${context.publicUrl}/v1/security/alerts (staff holding incidents.manage),`,
    `acknowledge it with POST /v1/security/alerts/${alert.id}/ack, close it with POST /v1/security/alerts/${alert.id}/close and a note.`,
    '',
  ].join('\n');
  return { to: to.join(', '), subject: oneLine(`[${context.shopName}] ${alert.severity.toUpperCase()} security alert: ${alert.title}`, 200), text };
}

/** Whether a mail failure may pass: no answer from the server, or a 4xx reply (RFC 5321 §4.2.1: transient). */
function transient(error: unknown): boolean {
  const cause = (error as { cause?: { responseCode?: unknown } }).cause;
  const code = cause?.responseCode;
  return typeof code !== 'number' || (code >= 400 && code < 500);
}

export function createMailAlertSink(deps: {
  mailer: Mailer;
  to: readonly string[];
  shopName: string;
  publicUrl: string;
  logger?: Logger | undefined;
  retryDelaysMs?: readonly number[] | undefined;
}): AlertSink {
  const stop = new AbortController();
  return {
    name: 'email',
    async send(alert) {
      const message = alertMail(alert, deps.to, deps);
      await withRetries(() => deps.mailer.send(message), {
        delaysMs: deps.retryDelaysMs ?? MAIL_RETRY_DELAYS_MS,
        retryable: transient,
        signal: stop.signal,
        onRetry: (error, attempt, waitMs) =>
          deps.logger?.warn({ sink: 'email', attempt, code: (error as { code?: unknown }).code, retry_in_ms: waitMs }, 'alert mail failed; retrying'),
      });
    },
    async close() {
      stop.abort();
      deps.mailer.close();
    },
  };
}
