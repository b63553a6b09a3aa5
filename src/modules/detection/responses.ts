import type { Logger } from '../../kernel/logger.ts';
import type { AuditLog } from '../audit/service.ts';
import type { SourceBlocks } from './blocks.ts';
import type { Alert, AlertActor } from './contracts.ts';
import type { Response } from './rules.ts';

/**
 * What a rule's responses do, each audited as `security.<what was done>` by `system:detection`
 * (never with a client address: a blocked source is named by its alert). The account side is a
 * port the runtime fills from identity and staff, so detection touches no other module's tables.
 */
export interface AccountPorts {
  /** Suspends the API key (reversible: `custos apikey resume`). */
  suspendApiKey(id: string): Promise<void>;
  /**
   * Locks sign-in of the actor's account (identity's lockout, as after its last allowed failure)
   * and ends its sessions; `attemptKey` is the attempt budget's key of a sign-in alert. Returns
   * the account id locked (or the key's), undefined when there is no account to lock.
   */
  lockAccount(actor: AlertActor | null, attemptKey: string | undefined): Promise<string | undefined>;
  /** Ends the actor's sessions, so that the next access signs in again with every factor; the account id, or undefined. */
  requireStepUp(actor: AlertActor | null): Promise<string | undefined>;
}

export const DETECTION_ACTOR = 'system:detection';

export interface Responses {
  /** Runs `responses` for a new alert; returns the actions taken (`lock_apikey`, …), never `alert`. */
  run(responses: readonly Response[], alert: Alert, blockFor: number, attemptKey: string | undefined): Promise<string[]>;
}

export function createResponses(deps: { ports: AccountPorts; blocks: SourceBlocks; audit: Pick<AuditLog, 'append'>; logger?: Logger | undefined; now: () => Date }): Responses {
  const { ports, blocks, audit, logger } = deps;
  const record = (action: string, recordId: string, subjectId?: string) =>
    audit.append({ actor: DETECTION_ACTOR, action: `security.${action}`, recordId, ...(subjectId === undefined ? {} : { subjectId }), fields: [], outcome: 'success' });

  async function one(response: Response, alert: Alert, blockFor: number, attemptKey: string | undefined): Promise<boolean> {
    switch (response) {
      case 'alert':
        return false;
      case 'lock_apikey':
        if (alert.actor?.kind !== 'apikey') return false;
        await ports.suspendApiKey(alert.actor.id);
        await record('apikey_suspended', alert.actor.id);
        return true;
      case 'block_source':
        if (alert.source === null) return false;
        await blocks.block(alert.source, new Date(deps.now().getTime() + blockFor), alert.id);
        await record('source_blocked', alert.id);
        return true;
      case 'lock_account': {
        const locked = await ports.lockAccount(alert.actor, attemptKey);
        if (locked === undefined) return false;
        await record('account_locked', alert.id);
        return true;
      }
      case 'require_step_up': {
        const account = await ports.requireStepUp(alert.actor);
        if (account === undefined) return false;
        await record('step_up_required', alert.id);
        return true;
      }
    }
  }

  return {
    async run(responses, alert, blockFor, attemptKey) {
      const taken: string[] = [];
      for (const response of responses) {
        try {
          if (await one(response, alert, blockFor, attemptKey)) taken.push(response);
        } catch (error) {
          logger?.error({ alert: alert.id, response, code: (error as { code?: unknown }).code }, 'a detection response failed');
        }
      }
      return taken;
    },
  };
}
