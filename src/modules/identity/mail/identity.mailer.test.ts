import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { smtpServer, unQuote, type ReceivedMail as Received } from '../../../../test/support/smtp.ts';
import { AppError } from '../../../kernel/errors.ts';
import { Secret } from '../../../kernel/secret.ts';
import { passwordResetMail, verificationMail } from './mail-messages.ts';
import { createMailer } from './mailer.ts';

let dir: string;
beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), 'custos-mail-'));
});
afterEach(() => rmSync(dir, { recursive: true, force: true }));

const link = 'https://shop.example/account/reset?token=abc.def';

describe('mailer over SMTP', () => {
  it('delivers to a real SMTP server', async () => {
    const smtp = await smtpServer();
    const mailer = createMailer({ smtpUrl: new Secret(smtp.url), outboxDir: join(dir, 'outbox'), from: 'Acme Outdoor <no-reply@shop.example>' });
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
    const mailer = createMailer({ smtpUrl: new Secret(smtp.url), outboxDir: dir, from: 'no-reply@shop.example' });
    try {
      const error = await mailer.send({ to: 'kim@example.com', subject: 'x', text: 'y' }).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(AppError);
      expect((error as AppError).code).toBe('IDENTITY_MAIL_FAILED');
      expect((error as AppError).message).not.toContain('kim');
    } finally {
      mailer.close();
      await smtp.close();
    }
    const closed = createMailer({ smtpUrl: new Secret(smtp.url), outboxDir: dir, from: 'no-reply@shop.example' });
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
