import { connect, headers, type NatsConnection, type NodeConnectionOptions } from '@nats-io/transport-node';
import type { Clock } from '../../../kernel/clock.ts';
import { systemClock } from '../../../kernel/clock.ts';
import type { Logger } from '../../../kernel/logger.ts';
import { withRetries } from '../../../kernel/retry.ts';
import type { Secret } from '../../../kernel/secret.ts';
import type { AlertSink } from '../contracts.ts';
import { alertMessageId, alertPayload } from './alert-message.ts';

/**
 * Alerts published on a NATS subject (NATS_URL, CUSTOS_ALERT_NATS_SUBJECT), as the same JSON as
 * the webhook body, with headers `Nats-Msg-Id` (one per alert state: JetStream drops a repeat)
 * and `Content-Type: application/json`. The connection opens at the first alert and then
 * reconnects by itself; `send` resolves once the server has the message (a flush round trip),
 * retrying while the server is unreachable (2 s, 10 s, 30 s, 2 min). Credentials in NATS_URL
 * (`nats://user:password@host:4222`, or `nats://token@host:4222`) are passed as such; `tls://`
 * requires TLS.
 */
export const NATS_RETRY_DELAYS_MS: readonly number[] = [2_000, 10_000, 30_000, 120_000];
const ROUND_TRIP_TIMEOUT_MS = 10_000;

/** NATS_URL as connection options; the URL's credentials become user and password, or a token. */
export function natsOptions(url: string): NodeConnectionOptions {
  const u = new URL(url);
  const port = u.port === '' ? 4222 : Number(u.port);
  const user = decodeURIComponent(u.username);
  const pass = decodeURIComponent(u.password);
  return {
    servers: `${u.hostname}:${port}`,
    name: 'custos',
    ...(user !== '' && pass !== '' ? { user, pass } : user !== '' ? { token: user } : {}),
    ...(u.protocol === 'tls:' ? { tls: {} } : {}),
    timeout: ROUND_TRIP_TIMEOUT_MS,
    maxReconnectAttempts: -1,
  };
}

function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error(`${what} took longer than ${ms} ms`), { code: 'NATS_TIMEOUT' })), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

export function createNatsAlertSink(deps: {
  url: Secret<string>;
  subject: string;
  clock?: Clock | undefined;
  logger?: Logger | undefined;
  retryDelaysMs?: readonly number[] | undefined;
}): AlertSink {
  const clock = deps.clock ?? systemClock;
  const stop = new AbortController();
  let connection: Promise<NatsConnection> | undefined;

  const connected = (): Promise<NatsConnection> => {
    connection ??= connect(natsOptions(deps.url.reveal())).then(
      (nc) => {
        void (async () => {
          for await (const s of nc.status()) if (s.type === 'disconnect' || s.type === 'reconnect') deps.logger?.warn({ sink: 'nats', status: s.type }, 'NATS connection changed');
        })().catch(() => undefined);
        return nc;
      },
      (error: unknown) => {
        connection = undefined;
        throw error;
      },
    );
    return connection;
  };

  return {
    name: 'nats',
    async send(alert) {
      const body = JSON.stringify(alertPayload(alert, clock.now()));
      const h = headers();
      h.set('Nats-Msg-Id', alertMessageId(alert));
      h.set('Content-Type', 'application/json');
      await withRetries(
        async () => {
          const nc = await connected();
          nc.publish(deps.subject, body, { headers: h });
          await within(nc.flush(), ROUND_TRIP_TIMEOUT_MS, 'the NATS flush');
        },
        {
          delaysMs: deps.retryDelaysMs ?? NATS_RETRY_DELAYS_MS,
          retryable: () => !stop.signal.aborted,
          signal: stop.signal,
          onRetry: (error, attempt, waitMs) =>
            deps.logger?.warn({ sink: 'nats', attempt, code: (error as { code?: unknown }).code, retry_in_ms: waitMs }, 'alert publish failed; retrying'),
        },
      );
    },
    async close() {
      stop.abort();
      const nc = await connection?.catch(() => undefined);
      connection = undefined;
      if (nc !== undefined && !nc.isClosed()) await nc.drain().catch(() => nc.close());
    },
  };
}
