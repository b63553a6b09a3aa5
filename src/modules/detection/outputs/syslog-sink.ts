import { readFileSync } from 'node:fs';
import { connect as tcpConnect, isIP, type Socket } from 'node:net';
import { hostname as osHostname } from 'node:os';
import { connect as tlsConnect, rootCertificates } from 'node:tls';
import type { Logger } from '../../../kernel/logger.ts';
import type { OcsfSink } from '../contracts.ts';
import { createLineQueue, serialise } from './line-queue.ts';

/**
 * OCSF records to a syslog server (CUSTOS_SYSLOG_URL): each record is one RFC 5424 message whose
 * MSG is the record as JSON, sent over TCP with octet-counting framing (RFC 6587 §3.4.1) or over
 * TLS (RFC 5425, the same framing, §4.3), the server's certificate checked against the system CAs
 * and CUSTOS_SYSLOG_CA. Writes go through the bounded queue (line-queue.ts): a server that is down
 * or slow costs queued lines, never a waiting request, and the sink reconnects by itself.
 * Stream syslog has no acknowledgements: lines handed to a connection that then breaks can be lost.
 */
export const SYSLOG_FACILITY = 10; // security/authorization (authpriv), RFC 5424 §6.2.1 table 1
const CONNECT_TIMEOUT_MS = 10_000;

/** OCSF severity_id → syslog severity (RFC 5424 §6.2.1 table 2). */
const SYSLOG_SEVERITY: Readonly<Record<number, number>> = { 0: 5, 1: 6, 2: 5, 3: 4, 4: 3, 5: 2, 6: 1, 99: 5 };

export interface SyslogTarget {
  readonly protocol: 'tcp' | 'tls';
  readonly host: string;
  readonly port: number;
  readonly caFile?: string | undefined;
}

/** PRINTUSASCII only (RFC 5424 §6: header fields), at most `max` characters; `-` (NILVALUE) when empty. */
function headerField(value: string, max: number): string {
  const clean = value.replace(/[^\x21-\x7e]/g, '').slice(0, max);
  return clean === '' ? '-' : clean;
}

/** JSON with every character past ASCII escaped (`\uXXXX`): still the same JSON, and a MSG of plain ASCII needs no BOM (RFC 5424 §6.4). */
export function asciiJson(value: unknown): string {
  return JSON.stringify(value).replace(/[\u007f-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

/**
 * One RFC 5424 message: `<PRI>1 TIMESTAMP HOSTNAME APP-NAME PROCID MSGID - MSG`, with the record's
 * time as TIMESTAMP, its class name as MSGID (`Authentication`, `APIActivity`, `DetectionFinding`,
 * `AccountChange`), no structured data, and the record as JSON for MSG.
 */
export function syslogMessage(record: Readonly<Record<string, unknown>>, origin: { hostname: string; procId: string | number }): string {
  const severity = SYSLOG_SEVERITY[Number(record.severity_id)] ?? 5;
  const time = typeof record.time === 'number' ? new Date(record.time) : new Date();
  const msgId = headerField(String(record.class_name ?? 'OCSF'), 32);
  return `<${SYSLOG_FACILITY * 8 + severity}>1 ${time.toISOString()} ${headerField(origin.hostname, 255)} custos ${headerField(String(origin.procId), 128)} ${msgId} - ${asciiJson(record)}`;
}

/** Octet-counting frame (RFC 6587 §3.4.1, RFC 5425 §4.3): `MSG-LEN SP SYSLOG-MSG`. */
export function octetFrame(message: string): Buffer {
  const body = Buffer.from(message, 'utf8');
  return Buffer.concat([Buffer.from(`${body.length} `), body]);
}

export interface SyslogSink extends OcsfSink {
  readonly dropped: number;
  flush(timeoutMs?: number): Promise<boolean>;
}

export function createSyslogSink(deps: {
  target: SyslogTarget;
  logger?: Logger | undefined;
  capacity?: number | undefined;
  /** How long close() waits for queued lines to be written (5 s). */
  closeTimeoutMs?: number | undefined;
  hostname?: string | undefined;
  backoffMs?: { min: number; max: number } | undefined;
}): SyslogSink {
  const { target } = deps;
  const origin = { hostname: deps.hostname ?? osHostname(), procId: process.pid };
  const ca = target.caFile === undefined ? undefined : [...rootCertificates, readFileSync(target.caFile, 'utf8')];
  let socket: Socket | undefined;

  function connect(): Promise<Socket> {
    return new Promise((resolve, reject) => {
      const s =
        target.protocol === 'tls'
          ? tlsConnect({
              host: target.host,
              port: target.port,
              minVersion: 'TLSv1.2',
              ...(isIP(target.host) === 0 ? { servername: target.host } : {}),
              ...(ca === undefined ? {} : { ca }),
            })
          : tcpConnect({ host: target.host, port: target.port });
      const timer = setTimeout(() => s.destroy(Object.assign(new Error('connect timeout'), { code: 'ETIMEDOUT' })), CONNECT_TIMEOUT_MS);
      s.once(target.protocol === 'tls' ? 'secureConnect' : 'connect', () => {
        clearTimeout(timer);
        s.removeListener('error', reject);
        s.setKeepAlive(true, 60_000);
        s.on('error', () => undefined); // reported through the failed write; 'close' follows
        s.on('close', () => {
          if (socket === s) socket = undefined;
        });
        // A syslog server sends nothing back (RFC 6587, RFC 5425); anything it sends is ignored.
        s.resume();
        resolve(s);
      });
      s.once('error', (error) => {
        clearTimeout(timer);
        reject(error);
      });
    });
  }

  const queue = createLineQueue({
    name: 'syslog',
    logger: deps.logger,
    capacity: deps.capacity,
    backoffMs: deps.backoffMs,
    async write(frames) {
      socket ??= await connect();
      const s = socket;
      await new Promise<void>((resolve, reject) => s.write(Buffer.concat(frames), (error) => (error ? reject(error) : resolve())));
    },
    reset() {
      socket?.destroy();
      socket = undefined;
    },
  });

  return {
    write(record) {
      const message = serialise(record, deps.logger, (r) => syslogMessage(r, origin));
      if (message !== undefined) queue.push(octetFrame(message));
    },
    get dropped() {
      return queue.dropped;
    },
    flush: (timeoutMs) => queue.flush(timeoutMs),
    async close() {
      await queue.close(deps.closeTimeoutMs);
      socket?.end();
      socket = undefined;
    },
  };
}
