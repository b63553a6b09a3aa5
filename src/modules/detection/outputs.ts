import type { Logger } from '../../kernel/logger.ts';
import type { SecurityEvent } from '../../kernel/security-events.ts';
import type { Alert, AlertSink, OcsfSink } from './contracts.ts';

/**
 * Hands new alerts to the alert sinks (webhook, mail, NATS: src/modules/detection/outputs/ builds
 * them against contracts.ts) and events and alerts to the OCSF sink, never on a request's path: a
 * sink that fails is tried again after 1, 5 and 30 seconds, then the failure is logged (sink name
 * and alert id, nothing else). The OCSF sink receives `{ kind: 'event', ...event }` and
 * `{ kind: 'alert', ...alert }`; mapping them to OCSF classes is that sink's work.
 */
export interface Outputs {
  alert(alert: Alert, notify: boolean): void;
  event(event: SecurityEvent): void;
  /** Waits for deliveries under way; a retry not yet due is tried once more at once, then given up (and logged). */
  close(): Promise<void>;
}

const RETRY_MS = [1000, 5000, 30_000];

export function createOutputs(deps: { sinks: readonly AlertSink[]; ocsf?: OcsfSink | undefined; logger?: Logger | undefined }): Outputs {
  const { sinks, ocsf, logger } = deps;
  const inFlight = new Set<Promise<void>>();
  const waits = new Set<{ timer: NodeJS.Timeout; resolve: () => void }>();
  let closing = false;

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const wait = { timer: setTimeout(() => (waits.delete(wait), resolve()), ms), resolve };
      wait.timer.unref();
      waits.add(wait);
    });

  async function deliver(sink: AlertSink, alert: Alert): Promise<void> {
    for (let attempt = 0; ; attempt++) {
      try {
        await sink.send(alert);
        return;
      } catch (error) {
        const delay = RETRY_MS[attempt];
        if (delay === undefined || closing) {
          logger?.error({ sink: sink.name, alert: alert.id, attempts: attempt + 1, code: (error as { code?: unknown }).code }, 'an alert could not be delivered');
          return;
        }
        await pause(delay);
      }
    }
  }

  return {
    alert(alert, notify) {
      ocsf?.write({ kind: 'alert', ...alert });
      if (!notify) return;
      for (const sink of sinks) {
        const p = deliver(sink, alert);
        inFlight.add(p);
        void p.finally(() => inFlight.delete(p));
      }
    },
    event(event) {
      ocsf?.write({ kind: 'event', ...event, at: event.at.toISOString() });
    },
    async close() {
      closing = true;
      for (const w of waits) {
        clearTimeout(w.timer);
        w.resolve();
      }
      await Promise.all(inFlight);
      for (const sink of sinks) await sink.close().catch(() => undefined);
      await ocsf?.close().catch(() => undefined);
    },
  };
}
