import type { MailMessage } from './mailer.ts';

/**
 * The messages identity sends. Plain text, no tracking, the link and how long it lasts; the
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
      `The link works once and for ${hours(input.validForMs)}. Confirming links the account to what ${input.shopName} holds about this address, such as your orders.`,
      'If you did not create an account, ignore this message: without the link, nobody gets that access.',
      '',
    ].join('\n'),
  };
}

/** The invitation a shop sends a customer it stored: choose a password to claim the account. */
export function claimMail(input: { to: string; shopName: string; link: string; validForMs: number }): MailMessage {
  return {
    to: input.to,
    subject: `Your ${input.shopName} account is ready to claim`,
    text: [
      'Hello,',
      '',
      `${input.shopName} invites you to claim the account it keeps for this email address, with your orders. To choose a password, open this link:`,
      '',
      input.link,
      '',
      `The link works once and for ${hours(input.validForMs)}. If you do not want an account, ignore this message.`,
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
