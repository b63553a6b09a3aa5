import type { MailMessage } from '../identity/mail/mailer.ts';

/**
 * The mails rights sends the customer. They carry no personal data beyond the address they go to
 * (issue 13: a mail can sit in an inbox or an outbox folder for years): no name, no order, no
 * field of the export, only what happened and the link.
 */
const day = (iso: string) => `${iso.slice(0, 10)} ${iso.slice(11, 16)} UTC`;

export function exportReadyMail(input: { to: string; shopName: string; link: string; expiresAt: string }): MailMessage {
  return {
    to: input.to,
    subject: `Your data from ${input.shopName} is ready to download`,
    text: [
      'Hello,',
      '',
      `you asked ${input.shopName} for a copy of the data it keeps about you. It is ready: open this link and choose Download.`,
      '',
      input.link,
      '',
      `The link works once and until ${day(input.expiresAt)}. The file is a ZIP archive with one structured document (JSON) and one CSV file per kind of data.`,
      `If you did not ask for this, tell ${input.shopName}: nobody else received the link.`,
      '',
    ].join('\n'),
  };
}

/** Art. 18(3): the customer is told before a restriction of processing is lifted. */
export function restrictionLiftMail(input: { to: string; shopName: string; liftsAt: string }): MailMessage {
  return {
    to: input.to,
    subject: `${input.shopName} will lift the restriction of your data`,
    text: [
      'Hello,',
      '',
      `at your request ${input.shopName} restricted the use of your data: it is stored, but not used for anything else. That restriction ends on ${day(input.liftsAt)}.`,
      '',
      'Why it ends is shown with your request in your account (the reason is not repeated here, as mail is not the place for it).',
      `If you disagree, reply to ${input.shopName} before then; you may also object to the processing or ask for your data to be erased.`,
      '',
    ].join('\n'),
  };
}
