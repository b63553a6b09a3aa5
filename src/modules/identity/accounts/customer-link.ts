import { AppError, fail } from '../../../kernel/errors.ts';
import type { VaultService } from '../../vault/service.ts';
import { VaultErrors } from '../../vault/errors.ts';
import { IdentityErrors } from '../errors.ts';
import type { AccountInfo, AccountService } from './account-service.ts';

/**
 * One person, one record: the vault customer a customer account shows. Only a verified address
 * links — an unverified account has no vault record and reaches no customer data, so an address
 * nobody proved holds nothing and blocks no one. A verified account links to the customer the
 * shop stored with that email (found through the vault's blind index), or to a new record holding
 * just the email when there is none. Two of these racing with a shop's create end on one record:
 * the vault's unique email index refuses the second create, which then links to the first.
 */
export interface CustomerLinkDeps {
  readonly accounts: Pick<AccountService, 'linkCustomer'>;
  readonly vault: Pick<VaultService, 'create' | 'customerIdByEmail'>;
}

export async function linkedCustomer(deps: CustomerLinkDeps, account: AccountInfo, requestId: string): Promise<string> {
  if (account.customer_id !== null) return account.customer_id;
  if (account.email_verified_at === null) fail(IdentityErrors.IDENTITY_EMAIL_UNVERIFIED, 'confirm the email address first; customer data is linked once it is');
  let customerId = await deps.vault.customerIdByEmail(account.email);
  if (customerId === undefined) {
    const actor = { ref: `account:${account.id}`, kind: 'system' as const, purposes: ['account'] };
    try {
      ({ id: customerId } = await deps.vault.create({ actor, purpose: 'account', requestId }, 'customers', undefined, { email: account.email }));
    } catch (error) {
      if (!(error instanceof AppError && error.code === VaultErrors.VAULT_EMAIL_TAKEN.code)) throw error;
      customerId = await deps.vault.customerIdByEmail(account.email);
      if (customerId === undefined) throw error;
    }
  }
  await deps.accounts.linkCustomer(account.id, customerId);
  return customerId;
}
