import { join } from 'node:path';
import type { Config } from '../../../config/config.ts';
import type { Clock } from '../../../kernel/clock.ts';
import type { Logger } from '../../../kernel/logger.ts';
import { createMailer, mailSender, publicOrigin } from '../../identity/mail/mailer.ts';
import type { Alert, AlertSink, OcsfSink } from '../contracts.ts';
import { createMailAlertSink } from './mail-sink.ts';
import { createNatsAlertSink } from './nats-sink.ts';
import { createOcsfFileSink } from './ocsf-file-sink.ts';
import { createSyslogSink } from './syslog-sink.ts';
import { createWebhookAlertSink } from './webhook-sink.ts';

/**
 * The outputs of detection, built from the configuration: where an alert goes besides the alerts
 * table (signed webhook, mail, NATS subject), and where security events and alerts go as OCSF
 * records (a JSON-lines file, a syslog server). The detection engine calls these factories once
 * and closes what they return at shutdown.
 *
 * Each alert sink's `send` retries transient failures by itself, with growing waits, and throws
 * only once it gives up; `dispatchAlert` sends to every sink at once and logs each failure by sink
 * name and alert id (never the alert's content or an address).
 */
export { alertToOcsf, OCSF_VERSION, toOcsf } from './ocsf.ts';

export type OutputsConfig = Pick<Config, 'alerts' | 'ocsf' | 'smtpUrl' | 'mailFrom' | 'shopName' | 'publicUrl' | 'host' | 'port' | 'dataDir'>;

export interface OutputsDeps {
  readonly logger?: Logger | undefined;
  readonly clock?: Clock | undefined;
}

export function createAlertSinks(config: OutputsConfig, deps: OutputsDeps = {}): AlertSink[] {
  const sinks: AlertSink[] = [];
  const { webhook, email, nats } = config.alerts;
  if (webhook !== undefined)
    sinks.push(createWebhookAlertSink({ url: webhook.url, keys: webhook.keys.reveal(), caFile: webhook.caFile, clock: deps.clock, logger: deps.logger }));
  if (email.length > 0) {
    const publicUrl = publicOrigin(config);
    const mailer = createMailer({ smtpUrl: config.smtpUrl, outboxDir: join(config.dataDir, 'outbox'), from: mailSender(config, publicUrl) });
    sinks.push(createMailAlertSink({ mailer, to: email, shopName: config.shopName, publicUrl, logger: deps.logger }));
  }
  if (nats !== undefined) sinks.push(createNatsAlertSink({ url: nats.url, subject: nats.subject, clock: deps.clock, logger: deps.logger }));
  return sinks;
}

/** One sink for the OCSF file and the syslog server, whichever are configured; undefined when neither is. */
export function createOcsfSink(config: Pick<Config, 'ocsf'>, deps: OutputsDeps = {}): OcsfSink | undefined {
  const sinks: OcsfSink[] = [];
  if (config.ocsf.file !== undefined) sinks.push(createOcsfFileSink({ file: config.ocsf.file, logger: deps.logger }));
  if (config.ocsf.syslog !== undefined) sinks.push(createSyslogSink({ target: config.ocsf.syslog, logger: deps.logger }));
  if (sinks.length <= 1) return sinks[0];
  return {
    write(record) {
      for (const sink of sinks) sink.write(record);
    },
    async close() {
      await Promise.all(sinks.map((s) => s.close()));
    },
  };
}

/** Sends one alert to every sink at once; never throws. Returns the names of the sinks that took it and of those that gave up. */
export async function dispatchAlert(sinks: readonly AlertSink[], alert: Alert, logger?: Logger): Promise<{ sent: string[]; failed: string[] }> {
  const results = await Promise.allSettled(sinks.map((s) => s.send(alert)));
  const sent: string[] = [];
  const failed: string[] = [];
  results.forEach((result, i) => {
    const name = sinks[i]!.name;
    if (result.status === 'fulfilled') sent.push(name);
    else {
      failed.push(name);
      logger?.error({ sink: name, alert: alert.id, rule: alert.rule, code: (result.reason as { code?: unknown }).code }, 'an alert could not be delivered');
    }
  });
  return { sent, failed };
}
