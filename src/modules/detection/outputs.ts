import type { Logger } from '../../kernel/logger.ts';
import type { SecurityEvent } from '../../kernel/security-events.ts';
import type { Alert, AlertSink, OcsfSink } from './contracts.ts';
import { alertToOcsf, dispatchAlert, toOcsf } from './outputs/index.ts';

/**
 * Hands new alerts to the alert sinks (webhook, mail, NATS: src/modules/detection/outputs/) and
 * events and alerts, as OCSF records, to the OCSF sink (file, syslog), never on a request's path.
 * Each sink retries transient failures itself and gives up with a log line (sink name and alert
 * id, nothing else); this layer does not retry on top of it.
 */
export interface Outputs {
  alert(alert: Alert, notify: boolean): void;
  event(event: SecurityEvent): void;
  /** Waits for deliveries under way, then closes the sinks (their waiting retries end). */
  close(): Promise<void>;
}

export function createOutputs(deps: { sinks: readonly AlertSink[]; ocsf?: OcsfSink | undefined; logger?: Logger | undefined }): Outputs {
  const { sinks, ocsf, logger } = deps;
  const inFlight = new Set<Promise<unknown>>();
  const write = (record: () => Readonly<Record<string, unknown>>) => {
    if (ocsf === undefined) return;
    try {
      ocsf.write(record());
    } catch (error) {
      logger?.warn({ code: (error as { code?: unknown }).code }, 'a security record could not be mapped to OCSF');
    }
  };
  return {
    alert(alert, notify) {
      write(() => alertToOcsf(alert));
      if (!notify || sinks.length === 0) return;
      const p = dispatchAlert(sinks, alert, logger);
      inFlight.add(p);
      void p.finally(() => inFlight.delete(p));
    },
    event(event) {
      write(() => toOcsf(event));
    },
    async close() {
      for (const sink of sinks) await sink.close().catch(() => undefined);
      await Promise.all(inFlight);
      await ocsf?.close().catch(() => undefined);
    },
  };
}
