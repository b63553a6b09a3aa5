import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import nodemailer from 'nodemailer';
import type { Config } from '../../../config/config.ts';
import { AppError } from '../../../kernel/errors.ts';
import type { Secret } from '../../../kernel/secret.ts';
import { IdentityErrors } from '../errors.ts';

/**
 * Outgoing mail. With an SMTP URL (CUSTOS_SMTP_URL; `smtps://` or `smtp://…?requireTLS=true` for
 * transport security, ASVS 12.3.x) messages go to that server through nodemailer; without one,
 * each message is written as an RFC 5322 `.eml` file into the outbox folder, so a laptop set-up can
 * read its verification and reset links without a mail server. Outbox files carry personal data
 * and live links: the folder is 0700 and each file 0600.
 */
export interface MailMessage {
  readonly to: string;
  readonly subject: string;
  readonly text: string;
  readonly html?: string;
}

export interface Mailer {
  readonly kind: 'smtp' | 'outbox';
  /** Sends one message; throws IDENTITY_MAIL_FAILED when the server refuses or cannot be reached. */
  send(message: MailMessage): Promise<{ messageId: string; file?: string }>;
  close(): void;
}

async function streamToBuffer(message: Buffer | Readable): Promise<Buffer> {
  if (Buffer.isBuffer(message)) return message;
  const chunks: Buffer[] = [];
  for await (const chunk of message) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk)));
  return Buffer.concat(chunks);
}

function mailFailed(error: unknown): never {
  throw new AppError(IdentityErrors.IDENTITY_MAIL_FAILED.code, IdentityErrors.IDENTITY_MAIL_FAILED.status, 'the mail could not be sent', {
    cause: error,
  });
}

/** The sender of every mail: CUSTOS_MAIL_FROM, else the shop's name at no-reply@ the public URL's host. */
export function mailSender(config: Pick<Config, 'mailFrom' | 'shopName'>, publicUrl: string): string {
  return config.mailFrom ?? `${config.shopName.replace(/[<>"\r\n]/g, '')} <no-reply@${new URL(publicUrl).hostname}>`;
}

/** The origin links in mails point to: CUSTOS_PUBLIC_URL, else https://HOST:PORT (localhost for a wildcard address). */
export function publicOrigin(config: Pick<Config, 'publicUrl' | 'host' | 'port'>): string {
  const host = config.host === '0.0.0.0' || config.host === '::' ? 'localhost' : config.host;
  return config.publicUrl ?? new URL(`https://${host}:${config.port}`).origin;
}

export function createMailer(deps: { smtpUrl?: Secret<string> | undefined; outboxDir: string; from: string }): Mailer {
  const { from, outboxDir } = deps;
  const envelope = (m: MailMessage) => ({ from, to: m.to, subject: m.subject, text: m.text, ...(m.html === undefined ? {} : { html: m.html }) });

  if (deps.smtpUrl !== undefined) {
    const transport = nodemailer.createTransport(deps.smtpUrl.reveal());
    return {
      kind: 'smtp',
      async send(message) {
        try {
          const info = await transport.sendMail(envelope(message));
          return { messageId: info.messageId };
        } catch (error) {
          mailFailed(error);
        }
      },
      close: () => transport.close(),
    };
  }

  const transport = nodemailer.createTransport({ streamTransport: true, buffer: true, newline: 'windows' });
  return {
    kind: 'outbox',
    async send(message) {
      const info = await transport.sendMail(envelope(message));
      const body = await streamToBuffer(info.message);
      await mkdir(outboxDir, { recursive: true, mode: 0o700 });
      const stamp = new Date().toISOString().replace(/[:.]/g, '-');
      const file = join(outboxDir, `${stamp}-${randomBytes(4).toString('hex')}.eml`);
      try {
        await writeFile(file, body, { mode: 0o600, flag: 'wx' });
      } catch (error) {
        mailFailed(error);
      }
      return { messageId: info.messageId, file };
    },
    close: () => transport.close(),
  };
}
