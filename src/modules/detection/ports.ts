import type { ApiKeyService } from '../apikeys/service.ts';
import type { IdentityServices } from '../identity/sessions/session-runtime.ts';
import type { StaffServices } from '../staff/services.ts';
import type { AlertActor } from './contracts.ts';
import type { AccountPorts } from './responses.ts';

/**
 * The responses' side in other modules, through their services: API keys suspend; an account is
 * locked through identity's lockout (sign-in refused for CUSTOS_LOCKOUT_MINUTES, a password reset
 * still works) with its sessions ended; a step-up ends the sessions, so the next access signs in
 * again with every factor. A staff member's account is found through the staff directory.
 */
export function accountPorts(deps: {
  apiKeys: Pick<ApiKeyService, 'suspend'>;
  identity: Pick<IdentityServices, 'accounts' | 'lockout' | 'sessions'>;
  staff: Pick<StaffServices, 'directory'>;
}): AccountPorts {
  const { identity } = deps;

  async function accountOf(actor: AlertActor | null): Promise<string | undefined> {
    if (actor?.kind === 'staff') return (await deps.staff.directory.member(actor.id)).accountId;
    if (actor?.kind === 'account') return actor.id;
    return undefined;
  }

  return {
    async suspendApiKey(id) {
      await deps.apiKeys.suspend(id);
    },
    async lockAccount(actor, attemptKey) {
      const accountId = await accountOf(actor);
      if (accountId === undefined) {
        if (attemptKey === undefined) return undefined;
        await identity.lockout.lock(attemptKey);
        return attemptKey;
      }
      const account = await identity.accounts.get(accountId);
      await identity.lockout.lock(attemptKey ?? identity.accounts.lockoutKey(account.realm, account.email));
      await identity.sessions.revokeAll(accountId, 'security_lock');
      return accountId;
    },
    async requireStepUp(actor) {
      const accountId = await accountOf(actor);
      if (accountId === undefined) return undefined;
      await identity.sessions.revokeAll(accountId, 'step_up_required');
      return accountId;
    },
  };
}
