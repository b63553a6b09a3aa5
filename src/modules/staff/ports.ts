import type { Secret } from '../../kernel/secret.ts';

/**
 * What staff needs from other capabilities, as narrow interfaces they satisfy (Ory Kratos
 * dependency interfaces): identity's AccountService fits `StaffAccounts` as it is; a mailer with
 * an outbox fits `StaffMailer`. Staff never reads identity's tables.
 */

/** Sign-in accounts of realm 'staff' (identity's `AccountService` satisfies this). */
export interface StaffAccounts {
  create(input: { realm: 'staff'; email: string }): Promise<{ account: { id: string } }>;
  get(id: string): Promise<{ id: string; email: string }>;
  findByEmail(realm: 'staff', email: string): Promise<{ id: string; email: string } | undefined>;
  /** Sets a password under the staff password policy (PCI DSS 8.3.6 and NIST SP 800-63B §3.1.1.2). */
  setPassword(id: string, password: Secret<string>): Promise<unknown>;
  markEmailVerified(id: string): Promise<void>;
  hasSecondFactor(id: string): Promise<boolean>;
}

/** Whether an account has TOTP on or a passkey registered; the guard needs only this. */
export type StaffMfaStatus = Pick<StaffAccounts, 'hasSecondFactor'>;

/** Sends one plain-text mail (identity's mailer/outbox will satisfy this). May throw. */
export interface StaffMailer {
  send(message: { to: string; subject: string; text: string }): Promise<void>;
}

/**
 * The caller's staff identity as the session layer sets it on `request.staff`. Authorisation never
 * trusts `role` from here: services reload the member, so a suspension or role change applies at
 * once. `mfaVerifiedAt` is when this session last verified a second factor (ISO-8601 or Date).
 */
export interface StaffContext {
  readonly memberId: string;
  readonly role: string;
  readonly mfaVerifiedAt: Date | string | null;
}

/** Who performs a staff action: the local operator (CLI, holds the database and keys) or a member. */
export type Operator = { readonly kind: 'cli' } | ({ readonly kind: 'staff' } & Pick<StaffContext, 'memberId' | 'mfaVerifiedAt'>);

export const CLI_OPERATOR: Operator = Object.freeze({ kind: 'cli' });

/** The audit log's actor ref of an operator. */
export function operatorRef(op: Operator): string {
  return op.kind === 'cli' ? 'cli' : `staff:${op.memberId}`;
}
