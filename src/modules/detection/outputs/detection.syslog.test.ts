import { createServer as createTcpServer, type AddressInfo, type Server, type Socket } from 'node:net';
import { createServer as createTlsServer } from 'node:tls';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { loopbackCertificate } from '../../../../test/support/loopback-tls.ts';
import { alertToOcsf, toOcsf } from './ocsf.ts';
import { createSyslogSink, octetFrame, SYSLOG_FACILITY, syslogMessage, type SyslogSink } from './syslog-sink.ts';
import { ocsfClassOf, ocsfProblems } from './test-support/ocsf-schema.ts';
import { sampleAlert } from './test-support/sample-alert.ts';

interface Rfc5424 {
  pri: number;
  version: number;
  timestamp: string;
  hostname: string;
  appName: string;
  procId: string;
  msgId: string;
  structuredData: string;
  msg: string;
}

const HEADER = /^<(\d{1,3})>(\d{1,2}) (\S+) (\S+) (\S+) (\S+) (\S+) (-|\[.*?\]) ([\s\S]*)$/;

/** Splits an RFC 6587 §3.4.1 octet-counted stream into messages, however the bytes arrive. */
function octetCountingParser(onMessage: (m: Rfc5424) => void) {
  let buffer = Buffer.alloc(0);
  return (chunk: Buffer) => {
    buffer = Buffer.concat([buffer, chunk]);
    for (;;) {
      const space = buffer.indexOf(0x20);
      if (space === -1) return;
      const lengthText = buffer.subarray(0, space).toString('ascii');
      if (!/^[1-9]\d*$/.test(lengthText)) throw new Error(`bad frame length ${JSON.stringify(lengthText)}`);
      const length = Number(lengthText);
      if (buffer.length < space + 1 + length) return;
      const text = buffer.subarray(space + 1, space + 1 + length).toString('utf8');
      buffer = buffer.subarray(space + 1 + length);
      const m = HEADER.exec(text);
      if (m === null) throw new Error('not an RFC 5424 message');
      onMessage({ pri: Number(m[1]), version: Number(m[2]), timestamp: m[3]!, hostname: m[4]!, appName: m[5]!, procId: m[6]!, msgId: m[7]!, structuredData: m[8]!, msg: m[9]! });
    }
  };
}

/** A syslog collector on loopback (TCP, or TLS when given a certificate) that parses what it receives. */
async function collector(tls?: { cert: string; key: string }, port = 0) {
  const messages: Rfc5424[] = [];
  const sockets = new Set<Socket>();
  const onSocket = (socket: Socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    socket.on('data', octetCountingParser((m) => messages.push(m)));
  };
  const server: Server = tls === undefined ? createTcpServer(onSocket) : createTlsServer({ ...tls, minVersion: 'TLSv1.2' }, onSocket);
  await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
  const close = async () => {
    for (const s of sockets) s.destroy();
    await new Promise((r) => server.close(r));
  };
  return { port: (server.address() as AddressInfo).port, messages, sockets, close };
}

const until = async (check: () => boolean) => {
  for (let i = 0; i < 1000 && !check(); i++) await new Promise((r) => setTimeout(r, 10));
  expect(check()).toBe(true);
};

const login = (n: number) => toOcsf({ at: new Date(Date.UTC(2026, 4, 1, 10, 0, n)), action: 'identity.authn_login_fail', outcome: 'failure', source: '198.51.100.4' });

const cleanup: (() => Promise<unknown>)[] = [];
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
});
const track = <T extends SyslogSink | { close(): Promise<unknown> }>(x: T): T => {
  cleanup.push(() => x.close());
  return x;
};

describe('RFC 5424 messages with octet counting', () => {
  it('frames each record as LEN SP <PRI>1 TIMESTAMP HOST custos PID MSGID - JSON', () => {
    const record = alertToOcsf({ ...sampleAlert, severity: 'critical', title: 'Honeytoken “Müller” read 🍯' });
    const frame = octetFrame(syslogMessage(record, { hostname: 'shop-1.example', procId: 4242 }));
    const parsed: Rfc5424[] = [];
    octetCountingParser((m) => parsed.push(m))(frame);
    expect(parsed).toHaveLength(1);
    const [m] = parsed as [Rfc5424];
    expect(m).toMatchObject({ pri: SYSLOG_FACILITY * 8 + 2, version: 1, timestamp: '2026-05-01T09:55:00.000Z', hostname: 'shop-1.example', appName: 'custos', procId: '4242', msgId: 'DetectionFinding', structuredData: '-' });
    expect(m.msg).toMatch(/^[\x20-\x7e]+$/); // plain ASCII: no BOM needed (RFC 5424 §6.4)
    expect(JSON.parse(m.msg)).toEqual(record);
  });

  it('round-trips any record through the frame and the JSON (property)', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary' }), fc.string({ unit: 'grapheme' }), fc.integer({ min: 0, max: 99 }), (title, host, sev) => {
        const record = { ...alertToOcsf({ ...sampleAlert, title }), severity_id: sev };
        const parsed: Rfc5424[] = [];
        octetCountingParser((m) => parsed.push(m))(octetFrame(syslogMessage(record, { hostname: host, procId: 1 })));
        expect(parsed).toHaveLength(1);
        expect(JSON.parse(parsed[0]!.msg)).toEqual(record);
        expect(parsed[0]!.hostname).toMatch(/^[\x21-\x7e]{1,255}$/);
      }),
      { numRuns: 300 },
    );
  });
});

describe('the syslog sink', () => {
  it('sends over TCP to a real listener, which parses valid OCSF records in order', async () => {
    const server = await collector();
    cleanup.push(server.close);
    const sink = track(createSyslogSink({ target: { protocol: 'tcp', host: '127.0.0.1', port: server.port }, hostname: 'shop-1' }));
    for (let n = 0; n < 50; n++) sink.write(login(n));
    sink.write(alertToOcsf(sampleAlert));
    expect(await sink.flush()).toBe(true);
    await until(() => server.messages.length === 51);
    expect(server.messages.map((m) => (JSON.parse(m.msg) as { time: number }).time).slice(0, 3)).toEqual([0, 1, 2].map((n) => login(n).time));
    for (const m of server.messages) {
      const record = JSON.parse(m.msg) as Record<string, unknown>;
      expect(ocsfProblems(record, ocsfClassOf(record))).toEqual([]);
      expect(m).toMatchObject({ version: 1, hostname: 'shop-1', appName: 'custos', procId: String(process.pid) });
    }
    expect(server.messages[0]).toMatchObject({ pri: SYSLOG_FACILITY * 8 + 5, msgId: 'Authentication' });
    expect(server.messages[50]).toMatchObject({ pri: SYSLOG_FACILITY * 8 + 3, msgId: 'DetectionFinding' });
    expect(() => sink.write({ class_uid: 6003, size: 10n })).not.toThrow(); // cannot be serialised: left out
  });

  it('sends over TLS (RFC 5425) to a listener whose certificate the CA file vouches for', async () => {
    const tls = await loopbackCertificate();
    const server = await collector(tls);
    cleanup.push(server.close);
    const sink = track(createSyslogSink({ target: { protocol: 'tls', host: 'localhost', port: server.port, caFile: tls.caFile } }));
    sink.write(login(1));
    sink.write(alertToOcsf(sampleAlert));
    expect(await sink.flush()).toBe(true);
    await until(() => server.messages.length === 2);
    expect(server.messages.map((m) => m.msgId)).toEqual(['Authentication', 'DetectionFinding']);
  });

  it('refuses a TLS listener it cannot verify, and keeps the records queued', async () => {
    const tls = await loopbackCertificate();
    const server = await collector(tls);
    cleanup.push(server.close);
    const sink = track(createSyslogSink({ target: { protocol: 'tls', host: 'localhost', port: server.port }, backoffMs: { min: 10, max: 50 }, closeTimeoutMs: 50 }));
    sink.write(login(1));
    expect(await sink.flush(300)).toBe(false);
    expect(server.messages).toHaveLength(0);
  });

  it('never blocks the caller while the server is down, drops past its bound with a count, and reconnects', async () => {
    const probe = await collector();
    const port = probe.port;
    await probe.close(); // nothing listens on the port now
    const sink = track(createSyslogSink({ target: { protocol: 'tcp', host: '127.0.0.1', port }, capacity: 5, backoffMs: { min: 10, max: 50 } }));
    for (let n = 0; n < 8; n++) expect(sink.write(login(n))).toBeUndefined();
    expect(sink.dropped).toBe(3);
    expect(await sink.flush(100)).toBe(false);
    const server = await collector(undefined, port);
    cleanup.push(server.close);
    expect(await sink.flush(10_000)).toBe(true);
    await until(() => server.messages.length === 5);
    // The server drops the connection; the next records go through a new one.
    for (const s of server.sockets) s.destroy();
    await until(() => server.sockets.size === 0);
    // Stream syslog has no acknowledgement: a line written before the client sees the close is lost, so write until one arrives.
    const before = server.messages.length;
    for (let n = 10; n < 500 && server.messages.length === before; n++) {
      sink.write(login(n));
      await new Promise((r) => setTimeout(r, 10));
    }
    await until(() => server.messages.length > before);
    expect(server.sockets.size).toBe(1);
  });
});
