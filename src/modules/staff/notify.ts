import type { Directory } from './directory.ts';
import type { StaffAccounts, StaffMailer } from './ports.ts';
import type { Permission } from './roles.ts';

/**
 * Tells the people who hold a permission (admins, security officers) that something needs them,
 * by mail when a mailer is wired. Best effort: a mail that fails never turns a refusal or a report
 * into an error, because the audit entry written beside it is the record that counts. Mails carry
 * ids and kinds, never personal data or free text.
 */
export interface Notifier {
  /** Mails every active holder of `permission`; returns how many mails were accepted. */
  tell(permission: Permission, subject: string, text: string): Promise<number>;
}

export function createNotifier(deps: { directory: Directory; accounts: Pick<StaffAccounts, 'get'>; mailer?: StaffMailer | undefined }): Notifier {
  const { directory, accounts, mailer } = deps;
  return {
    async tell(permission, subject, text) {
      if (mailer === undefined) return 0;
      let sent = 0;
      for (const member of await directory.holders(permission)) {
        try {
          const account = await accounts.get(member.accountId);
          await mailer.send({ to: account.email, subject, text });
          sent += 1;
        } catch {
          // Best effort: the audit log holds the event; the outbox (identity) retries its own sends.
        }
      }
      return sent;
    },
  };
}
