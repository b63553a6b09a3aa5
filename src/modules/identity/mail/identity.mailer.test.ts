import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SMTPServer, type SMTPServerAddress } from 'smtp-server';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../../kernel/errors.ts';
import { Secret } from '../../../kernel/secret.ts';
import { passwordResetMail, verificationMail } from './mail-messages.ts';
import { createMailer } from './mailer.ts';

interface Received {
  from: string | undefined;
  to: string[];
  body: string;
}

/** A real SMTP server in this process, on a free port, that keeps what it receives. */
async function smtpServer(options: { refuseRecipients?: boolean } = {}) {
  const received: Received[] = [];
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onRcptTo(address: SMTPServerAddress, _session, callback) {
      if (options.refuseRecipients) callback(new Error('550 mailbox unavailable'));
      else callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const from = session.envelope.mailFrom;
        received.push({
          from: from === false ? undefined : from.address,
          to: session.envelope.rcptTo.map((r) => r.address),
          body: unQuote(Buffer.concat(chunks).toString('utf8')),
        });
        callback();
      });
    },
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.server.address() as AddressInfo).port;
  return {
    url: new Secret(`smtp://127.0.0.1:${port}`),
    received,
    close: () => new Promise<void>((resolve) => server.close(resolve)),
  };
}

/** Undoes quoted-printable body encoding (RFC 2045 §6.7), which nodemailer uses for long lines. */
const unQuote = (body: string) =>
  body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'custos-mail-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const link = 'https://shop.example/account/reset?token=abc.def';

describe('mailer over SMTP', () => {
  it('delivers to a real SMTP server', async () => {
    const smtp = await smtpServer();
    const mailer = createMailer({ smtpUrl: smtp.url, outboxDir: join(dir, 'outbox'), from: 'Acme Outdoor <no-reply@shop.example>' });
    try {
      expect(mailer.kind).toBe('smtp');
      const sent = await mailer.send(passwordResetMail({ to: 'kim@example.com', shopName: 'Acme Outdoor', link, validForMs: 30 * 60_000 }));
      expect(sent.messageId).toMatch(/@/);
      expect(smtp.received).toHaveLength(1);
      const [mail] = smtp.received as [Received];
      expect(mail.from).toBe('no-reply@shop.example');
      expect(mail.to).toEqual(['kim@example.com']);
      expect(mail.body).toContain('Subject: Reset your Acme Outdoor password');
      expect(mail.body).toContain(link);
      expect(mail.body).toContain('30 minutes');
      expect(readdirSync(dir)).toEqual([]); // nothing in the outbox when SMTP is configured
    } finally {
      mailer.close();
      await smtp.close();
    }
  });

  it('fails with IDENTITY_MAIL_FAILED, naming no address, when the server refuses or is unreachable', async () => {
    const smtp = await smtpServer({ refuseRecipients: true });
    const mailer = createMailer({ smtpUrl: smtp.url, outboxDir: dir, from: 'no-reply@shop.example' });
    try {
      const error = await mailer.send({ to: 'kim@example.com', subject: 'x', text: 'y' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).code).toBe('IDENTITY_MAIL_FAILED');
      expect((error as AppError).message).not.toContain('kim');
    } finally {
      mailer.close();
      await smtp.close();
    }
    const closed = createMailer({ smtpUrl: smtp.url, outboxDir: dir, from: 'no-reply@shop.example' });
    await expect(closed.send({ to: 'kim@example.com', subject: 'x', text: 'y' })).rejects.toMatchObject({ code: 'IDENTITY_MAIL_FAILED' });
    closed.close();
  });
});

describe('mailer without SMTP', () => {
  it('writes each message as an .eml file into the outbox, readable by the owner only', async () => {
    const outbox = join(dir, 'outbox');
    const mailer = createMailer({ outboxDir: outbox, from: 'no-reply@shop.example' });
    expect(mailer.kind).toBe('outbox');
    const first = await mailer.send(verificationMail({ to: 'jo@example.com', shopName: 'Acme Outdoor', link, validForMs: 24 * 3_600_000 }));
    await mailer.send(passwordResetMail({ to: 'jo@example.com', shopName: 'Acme Outdoor', link, validForMs: 30 * 60_000 }));
    const files = readdirSync(outbox).sort();
    expect(files).toHaveLength(2);
    for (const f of files) expect(f).toMatch(/\.eml$/);
    expect(first.file).toBeDefined();
    const eml = unQuote(readFileSync(first.file!, 'utf8'));
    expect(eml).toContain(link);
    expect(eml).toContain('To: jo@example.com');
    expect(eml).toContain('From: no-reply@shop.example');
    expect(eml).toContain('Subject: Confirm your email address for Acme Outdoor');
    expect(eml).toContain('24 hours');
    expect(eml).toContain('\r\n');
    expect(statSync(first.file!).mode & 0o777).toBe(0o600);
    expect(statSync(outbox).mode & 0o777).toBe(0o700);
    mailer.close();
  });
});
