import type { Logger } from '../../../kernel/logger.ts';
import type { Mailer, MailMessage } from '../mail/mailer.ts';

/**
 * Mail sent on behalf of sign-up, reset and password changes leaves after the answer, never
 * before: whether a mail went out, and how long the mail server took, must not show in the answer
 * (ASVS 6.3.8: sign-up and reset answer alike for known and unknown addresses). A failed send is
 * logged by kind, never by address. `idle()` lets tests and shutdown wait for what is in flight.
 */
export interface MailQueue {
  /** Runs `job` after the answer (look-ups, token issue, sending); never throws, logs failures by kind. */
  later(kind: string, job: () => Promise<void>): void;
  /** Sends one message now (inside a `later` job). */
  send(message: MailMessage): Promise<void>;
  /** `later` for a message that is ready. */
  post(kind: string, message: MailMessage): void;
  /** Resolves when every job posted so far has finished. */
  idle(): Promise<void>;
}

export function createMailQueue(deps: { mailer: Pick<Mailer, 'send'>; logger?: Logger | undefined }): MailQueue {
  const pending = new Set<Promise<void>>();
  const queue: MailQueue = {
    later(kind, job) {
      const run = Promise.resolve()
        .then(job)
        .catch((error: unknown) => {
          deps.logger?.warn({ mail: kind, code: (error as { code?: unknown }).code }, 'a mail job failed');
        })
        .finally(() => pending.delete(run));
      pending.add(run);
    },
    async send(message) {
      await deps.mailer.send(message);
    },
    post(kind, message) {
      queue.later(kind, () => queue.send(message));
    },
    async idle() {
      while (pending.size > 0) await Promise.all([...pending]);
    },
  };
  return queue;
}

/** To the owner of an address someone tried to sign up with again (no account is created, nothing is revealed to the requester). */
export function accountExistsMail(input: { to: string; shopName: string; signInUrl: string; resetUrl: string }): MailMessage {
  return {
    to: input.to,
    subject: `Your ${input.shopName} account`,
    text: [
      'Hello,',
      '',
      `someone tried to create a ${input.shopName} account with this email address, but it already has one.`,
      '',
      `If it was you, sign in here: ${input.signInUrl}`,
      `Forgot your password? Reset it here: ${input.resetUrl}`,
      '',
      'If it was not you, you can ignore this message: nothing was changed.',
      '',
    ].join('\n'),
  };
}

/** After a password change or reset: every session was signed out (OWASP Authentication Cheat Sheet, "notify the user"). */
export function passwordChangedMail(input: { to: string; shopName: string; resetUrl: string }): MailMessage {
  return {
    to: input.to,
    subject: `Your ${input.shopName} password was changed`,
    text: [
      'Hello,',
      '',
      `the password of your ${input.shopName} account was just changed, and every device was signed out.`,
      '',
      `If this was not you, reset your password now: ${input.resetUrl}`,
      '',
    ].join('\n'),
  };
}
