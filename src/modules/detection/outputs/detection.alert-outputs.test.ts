import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough } from 'node:stream';
import { connect as natsConnect } from '@nats-io/transport-node';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { smtpServer } from '../../../../test/support/smtp.ts';
import { ConfigError, loadConfig } from '../../../config/config.ts';
import { newWebhookSecret, parseWebhookSecret, verifyWebhook } from '../../../http/webhooks.ts';
import { createLogger } from '../../../kernel/logger.ts';
import { Secret } from '../../../kernel/secret.ts';
import { createMailer } from '../../identity/mail/mailer.ts';
import type { Alert, AlertSink } from '../contracts.ts';
import { alertMessageId } from './alert-message.ts';
import { createAlertSinks, createOcsfSink, dispatchAlert } from './index.ts';
import { alertMail, createMailAlertSink } from './mail-sink.ts';
import { createNatsAlertSink, natsOptions } from './nats-sink.ts';
import { sampleAlert } from './test-support/sample-alert.ts';

const NATS_URL = process.env.NATS_TEST_URL ?? 'nats://127.0.0.1:4222';

let dir: string;
const cleanup: (() => Promise<unknown> | unknown)[] = [];
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'custos-outputs-'));
});
afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  rmSync(dir, { recursive: true, force: true });
});

const config = (env: Record<string, string>) => loadConfig({ CUSTOS_DATA_DIR: dir, ...env }, dir);
const configError = (env: Record<string, string>) => {
  try {
    config(env);
  } catch (error) {
    expect(error).toBeInstanceOf(ConfigError);
    return (error as Error).message;
  }
  throw new Error('no ConfigError');
};
const sinks = (env: Record<string, string>) => {
  const list = createAlertSinks(config(env));
  cleanup.push(() => Promise.all(list.map((s) => s.close())));
  return list;
};
const logCapture = () => {
  const lines: string[] = [];
  const stream = new PassThrough();
  stream.on('data', (c: Buffer) => lines.push(c.toString()));
  return { logger: createLogger('info', stream), text: () => lines.join('') };
};

describe('alert output settings', () => {
  const secret = newWebhookSecret();

  it('build one sink per configured output, and none by default', () => {
    expect(sinks({})).toEqual([]);
    expect(createOcsfSink(config({}))).toBeUndefined();
    const all = sinks({ CUSTOS_ALERT_WEBHOOK_URL: 'https://siem.shop.example/hooks', CUSTOS_ALERT_WEBHOOK_SECRET: secret, CUSTOS_ALERT_EMAIL: 'security@shop.example, oncall@shop.example', NATS_URL });
    expect(all.map((s) => s.name)).toEqual(['webhook', 'email', 'nats']);
    const c = config({ CUSTOS_ALERT_EMAIL: 'security@shop.example, oncall@shop.example', NATS_URL, CUSTOS_OCSF_FILE: 'siem/ocsf.jsonl', CUSTOS_SYSLOG_URL: 'tls://siem.shop.example' });
    expect(c.alerts.email).toEqual(['security@shop.example', 'oncall@shop.example']);
    expect(c.alerts.nats?.subject).toBe('custos.security.alerts');
    expect(c.ocsf).toEqual({ file: join(dir, 'siem/ocsf.jsonl'), syslog: { protocol: 'tls', host: 'siem.shop.example', port: 6514, caFile: undefined } });
    expect(config({ CUSTOS_SYSLOG_URL: 'tcp://[::1]:5140' }).ocsf.syslog).toMatchObject({ protocol: 'tcp', host: '::1', port: 5140 });
    expect(config({ CUSTOS_SYSLOG_URL: 'tcp://127.0.0.1' }).ocsf.syslog?.port).toBe(601);
  });

  it('keep the webhook secret and the NATS URL out of prints, and take several secrets for a rotation', () => {
    const old = newWebhookSecret();
    const c = config({ CUSTOS_ALERT_WEBHOOK_URL: 'http://127.0.0.1:9000/', CUSTOS_ALERT_WEBHOOK_SECRET: `${secret} ${old}`, NATS_URL: 'nats://alerts:pw-123@127.0.0.1:4222' });
    expect(c.alerts.webhook?.keys.reveal()).toEqual([parseWebhookSecret(secret), parseWebhookSecret(old)]);
    const printed = JSON.stringify(c);
    for (const leak of [secret.slice(6), old.slice(6), 'pw-123']) expect(printed).not.toContain(leak);
    expect(natsOptions(c.alerts.nats!.url.reveal())).toMatchObject({ servers: '127.0.0.1:4222', user: 'alerts', pass: 'pw-123' });
    expect(natsOptions('tls://tok3n@nats.shop.example')).toMatchObject({ servers: 'nats.shop.example:4222', token: 'tok3n', tls: {} });
  });

  it('refuse bad values with a ConfigError naming the variable and never the secret', () => {
    const short = `whsec_${Buffer.alloc(16, 7).toString('base64')}`;
    const cases: [Record<string, string>, string, RegExp][] = [
      [{ CUSTOS_ALERT_WEBHOOK_URL: 'https://siem.shop.example/' }, 'CUSTOS_ALERT_WEBHOOK_SECRET', /required with CUSTOS_ALERT_WEBHOOK_URL/],
      [{ CUSTOS_ALERT_WEBHOOK_SECRET: secret }, 'CUSTOS_ALERT_WEBHOOK_URL', /required with/],
      [{ CUSTOS_ALERT_WEBHOOK_URL: 'http://siem.shop.example/', CUSTOS_ALERT_WEBHOOK_SECRET: secret }, 'CUSTOS_ALERT_WEBHOOK_URL', /https/],
      [{ CUSTOS_ALERT_WEBHOOK_URL: 'siem', CUSTOS_ALERT_WEBHOOK_SECRET: secret }, 'CUSTOS_ALERT_WEBHOOK_URL', /absolute URL/],
      [{ CUSTOS_ALERT_WEBHOOK_URL: 'https://siem.shop.example/', CUSTOS_ALERT_WEBHOOK_SECRET: short }, 'CUSTOS_ALERT_WEBHOOK_SECRET', /24 to 64 bytes/],
      [{ CUSTOS_ALERT_WEBHOOK_URL: 'https://siem.shop.example/', CUSTOS_ALERT_WEBHOOK_SECRET: secret.slice(6) }, 'CUSTOS_ALERT_WEBHOOK_SECRET', /whsec_/],
      [{ CUSTOS_ALERT_WEBHOOK_CA: '/etc/ca.pem' }, 'CUSTOS_ALERT_WEBHOOK_CA', /goes with/],
      [{ CUSTOS_ALERT_EMAIL: 'security@shop.example, not-an-address' }, 'CUSTOS_ALERT_EMAIL', /entry 2/],
      [{ NATS_URL: 'http://127.0.0.1:4222' }, 'NATS_URL', /nats:\/\//],
      [{ CUSTOS_ALERT_NATS_SUBJECT: 'custos.>' }, 'CUSTOS_ALERT_NATS_SUBJECT', /no wildcards/],
      [{ CUSTOS_SYSLOG_URL: 'udp://siem.shop.example:514' }, 'CUSTOS_SYSLOG_URL', /tcp:\/\/host:port or tls/],
      [{ CUSTOS_SYSLOG_URL: 'tcp://siem.shop.example:70000' }, 'CUSTOS_SYSLOG_URL', /1 to 65535/],
      [{ CUSTOS_SYSLOG_URL: 'tcp://siem.shop.example:514', CUSTOS_SYSLOG_CA: '/etc/ca.pem' }, 'CUSTOS_SYSLOG_CA', /tls:\/\//],
    ];
    for (const [env, variable, problem] of cases) {
      const message = configError(env);
      expect(message).toContain(`${variable}:`);
      expect(message).toMatch(problem);
      expect(message).not.toContain(secret.slice(6));
      expect(message).not.toContain(short.slice(6));
    }
  });
});

describe('the webhook sink built from the settings', () => {
  let server: Server;
  afterEach(() => new Promise((r) => server.close(r)));

  it('posts each alert signed with the configured secret; the receiver verifies it', async () => {
    const received: { headers: IncomingMessage['headers']; body: string; verified: boolean }[] = [];
    const secret = newWebhookSecret();
    server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        let verified = true;
        try {
          verifyWebhook([parseWebhookSecret(secret)], req.headers as Record<string, string>, body);
        } catch {
          verified = false;
        }
        received.push({ headers: req.headers, body, verified });
        res.writeHead(verified ? 200 : 401).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const [webhook] = sinks({ CUSTOS_ALERT_WEBHOOK_URL: `http://127.0.0.1:${(server.address() as AddressInfo).port}/custos`, CUSTOS_ALERT_WEBHOOK_SECRET: secret });
    expect(await dispatchAlert([webhook!], sampleAlert)).toEqual({ sent: ['webhook'], failed: [] });
    expect(received).toHaveLength(1);
    expect(received[0]!.verified).toBe(true);
    expect(received[0]!.headers['webhook-id']).toBe(alertMessageId(sampleAlert));
    const body = JSON.parse(received[0]!.body) as { type: string; timestamp: string; data: Alert };
    expect(body.type).toBe('security.alert');
    expect(Number.isNaN(Date.parse(body.timestamp))).toBe(false);
    expect(body.data).toEqual(sampleAlert);
    // A body changed on the way no longer verifies.
    expect(() => verifyWebhook([parseWebhookSecret(secret)], received[0]!.headers as Record<string, string>, received[0]!.body.replace('"high"', '"low"'))).toThrow();
  });
});

describe('the mail sink', () => {
  it('mails each alert to every configured address through the configured SMTP server', async () => {
    const smtp = await smtpServer();
    cleanup.push(smtp.close);
    const [mail] = sinks({ CUSTOS_SMTP_URL: smtp.url, CUSTOS_MAIL_FROM: 'Custos <custos@shop.example>', CUSTOS_ALERT_EMAIL: 'security@shop.example,oncall@shop.example', CUSTOS_SHOP_NAME: 'Acme Outdoor' });
    await mail!.send({ ...sampleAlert, severity: 'critical' });
    expect(smtp.received).toHaveLength(1);
    const [got] = smtp.received;
    expect(got?.from).toBe('custos@shop.example');
    expect(got?.to).toEqual(['security@shop.example', 'oncall@shop.example']);
    expect(got?.body).toMatch(/^Subject: .*CRITICAL.*security.*reporting/m); // RFC 2047 encoded words
    expect(alertMail({ ...sampleAlert, severity: 'critical', title: 'two\r\nBcc: x@evil.example' }, ['a@shop.example'], { shopName: 'Acme Outdoor', publicUrl: 'https://p.example' }).subject).toBe(
      '[Acme Outdoor] CRITICAL security alert: two Bcc: x@evil.example',
    );
    for (const part of ['Rule:         bulk_read', 'API key key_01JTESTKEY00000000000000 ("reporting")', 'Source:       203.0.113.7', 'Events:       812', 'Actions:      lock_apikey', 'distinct_customers: 812', `POST /v1/security/alerts/${sampleAlert.id}/ack`])
      expect(got?.body).toContain(part);
    expect(readdirSync(dir)).not.toContain('outbox');
  });

  it('without a mail server, writes the alert mail to the outbox', async () => {
    const [mail] = sinks({ CUSTOS_ALERT_EMAIL: 'security@shop.example' });
    await mail!.send(sampleAlert);
    const files = readdirSync(join(dir, 'outbox'));
    expect(files).toHaveLength(1);
    expect(readFileSync(join(dir, 'outbox', files[0]!), 'utf8')).toContain('security alert');
  });

  it('retries a temporary refusal (451), gives up on a permanent one (550), and logs no address', async () => {
    const smtp = await smtpServer({ refuseData: (n) => (n === 1 ? 451 : n === 2 ? undefined : 550) });
    cleanup.push(smtp.close);
    const log = logCapture();
    const sink = createMailAlertSink({
      mailer: createMailer({ smtpUrl: new Secret(smtp.url), outboxDir: join(dir, 'outbox'), from: 'custos@shop.example' }),
      to: ['security@shop.example'],
      shopName: 'Acme',
      publicUrl: 'https://privacy.shop.example',
      logger: log.logger,
      retryDelaysMs: [5, 5, 5],
    });
    cleanup.push(() => sink.close());
    await sink.send(sampleAlert); // 451, then taken
    expect(smtp.received).toHaveLength(1);
    const failure = await dispatchAlert([sink], sampleAlert, log.logger); // 550: not retried
    expect(failure).toEqual({ sent: [], failed: ['email'] });
    expect(smtp.received).toHaveLength(1);
    expect(log.text()).toContain('alert mail failed; retrying');
    expect(log.text()).toContain('an alert could not be delivered');
    for (const leak of ['security@shop.example', sampleAlert.title, '203.0.113.7']) expect(log.text()).not.toContain(leak);
  });
});

describe('the NATS sink', () => {
  it('publishes each alert on the configured subject to a real subscriber', async () => {
    const subject = `custos.test.alerts.${process.pid}.${Date.now()}`;
    const subscriber = await natsConnect({ servers: natsOptions(NATS_URL).servers });
    cleanup.push(() => subscriber.close());
    const sub = subscriber.subscribe(subject, { max: 1 });
    await subscriber.flush();
    const [nats] = sinks({ NATS_URL, CUSTOS_ALERT_NATS_SUBJECT: subject });
    await nats!.send(sampleAlert);
    for await (const msg of sub) {
      expect(msg.headers?.get('Nats-Msg-Id')).toBe(alertMessageId(sampleAlert));
      expect(msg.headers?.get('Content-Type')).toBe('application/json');
      const body = msg.json<{ type: string; data: Alert }>();
      expect(body.type).toBe('security.alert');
      expect(body.data).toEqual(sampleAlert);
    }
    expect(sub.getProcessed()).toBe(1);
  });

  it('retries while no server answers, then gives up with an error', async () => {
    const closed = createServer();
    await new Promise<void>((r) => closed.listen(0, '127.0.0.1', r));
    const port = (closed.address() as AddressInfo).port;
    await new Promise((r) => closed.close(r)); // nothing listens there now
    const log = logCapture();
    const sink: AlertSink = createNatsAlertSink({ url: new Secret(`nats://127.0.0.1:${port}`), subject: 'custos.security.alerts', retryDelaysMs: [5, 5], logger: log.logger });
    cleanup.push(() => sink.close());
    await expect(sink.send(sampleAlert)).rejects.toThrow();
    expect(log.text().match(/alert publish failed; retrying/g)).toHaveLength(2);
  });
});

describe('OCSF sink from the settings', () => {
  it('writes to the file and to syslog when both are configured', async () => {
    const { createServer: tcpServer } = await import('node:net');
    let got = '';
    const server = tcpServer((s) => s.on('data', (c: Buffer) => (got += c.toString())));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise((r) => server.close(r)));
    const sink = createOcsfSink(config({ CUSTOS_OCSF_FILE: 'ocsf.jsonl', CUSTOS_SYSLOG_URL: `tcp://127.0.0.1:${(server.address() as AddressInfo).port}` }))!;
    sink.write({ class_uid: 2004, class_name: 'Detection Finding', severity_id: 4, time: 0 });
    await sink.close();
    expect(JSON.parse(readFileSync(join(dir, 'ocsf.jsonl'), 'utf8'))).toMatchObject({ class_uid: 2004 });
    for (let i = 0; i < 500 && !got.includes('DetectionFinding'); i++) await new Promise((r) => setTimeout(r, 10));
    expect(got).toMatch(/^\d+ <83>1 1970-01-01T00:00:00.000Z \S+ custos \d+ DetectionFinding - \{"class_uid":2004/);
  });
});
