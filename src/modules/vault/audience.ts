import type { Kysely } from 'kysely';
import type { Store } from '../../store/database.ts';
import type { Database } from '../../store/schema.ts';

/**
 * What the consent capability asks the vault without reading any personal data: whether a
 * customer exists (so that nothing is recorded for an id that names no one).
 */
export interface VaultSubjects {
  exists(customerId: string): Promise<boolean>;
}

export function createVaultSubjects(deps: { db: Kysely<Database>; read: Store['read'] }): VaultSubjects {
  const EXISTS = deps.db.selectFrom('records').select('id').where('id', '=', '').where('collection', '=', 'customers').compile().sql;
  return {
    async exists(customerId) {
      return (await deps.read<{ id: string }>(EXISTS, [customerId, 'customers'])).length === 1;
    },
  };
}
