import type { MailMessage } from './mailer.ts';

/**
 * The two messages identity sends. Plain text, no tracking, the link and how long it lasts; the
 * reset message says what to do if the person did not ask, and never reveals whether other
 * accounts exist (OWASP Forgot Password Cheat Sheet). The caller builds `link` from the public
 * URL of the privacy center and the token.
 */
const hours = (ms: number) => {
  const minutes = Math.round(ms / 60_000);
  return minutes % 60 === 0 ? `${minutes / 60} hour${minutes === 60 ? '' : 's'}` : `${minutes} minutes`;
};

export function verificationMail(input: { to: string; shopName: string; link: string; validForMs: number }): MailMessage {
  return {
    to: input.to,
    subject: `Confirm your email address for ${input.shopName}`,
    text: [
      'Hello,',
      '',
      `please confirm this email address for your ${input.shopName} account by opening this link:`,
      '',
      input.link,
      '',
      `The link works once and for ${hours(input.validForMs)}. If you did not create an account, you can ignore this message.`,
      '',
    ].join('\n'),
  };
}

export function passwordResetMail(input: { to: string; shopName: string; link: string; validForMs: number }): MailMessage {
  return {
    to: input.to,
    subject: `Reset your ${input.shopName} password`,
    text: [
      'Hello,',
      '',
      `someone asked to reset the password of the ${input.shopName} account for this email address. To choose a new password, open this link:`,
      '',
      input.link,
      '',
      `The link works once and for ${hours(input.validForMs)}. If you did not ask for this, ignore this message: your password stays as it is.`,
      '',
    ].join('\n'),
  };
}
