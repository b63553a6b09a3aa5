import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerAddress } from 'smtp-server';

export interface ReceivedMail {
  from: string | undefined;
  to: string[];
  /** The message as received, quoted-printable undone. */
  body: string;
}

/** Undoes quoted-printable body encoding (RFC 2045 §6.7), which nodemailer uses for long lines. */
export const unQuote = (body: string) =>
  body.replace(/=\r?\n/g, '').replace(/=([0-9A-F]{2})/g, (_, hex: string) => String.fromCharCode(Number.parseInt(hex, 16)));

/**
 * A real SMTP server in this process, on a free loopback port, that keeps what it receives.
 * `refuseRecipients` answers 550 to every RCPT TO; `refuseData(n)` may answer the n-th message (from 1) with an SMTP code.
 */
export async function smtpServer(options: { refuseRecipients?: boolean; refuseData?: (n: number) => number | undefined } = {}) {
  const received: ReceivedMail[] = [];
  let messages = 0;
  const server = new SMTPServer({
    authOptional: true,
    disabledCommands: ['STARTTLS'],
    logger: false,
    onRcptTo(_address: SMTPServerAddress, _session, callback) {
      if (options.refuseRecipients === true) callback(new Error('550 mailbox unavailable'));
      else callback();
    },
    onData(stream, session, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const code = options.refuseData?.(++messages);
        if (code !== undefined) {
          callback(Object.assign(new Error(code < 500 ? 'try again later' : 'message refused'), { responseCode: code }));
          return;
        }
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
  return { url: `smtp://127.0.0.1:${port}`, received, close: () => new Promise<void>((resolve) => server.close(() => resolve())) };
}
