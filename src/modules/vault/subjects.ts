import type { Kysely } from 'kysely';
import type { Database } from '../../store/schema.ts';

/**
 * What other capabilities may ask the vault about a data subject without reading any of their
 * data: whether a customer record exists. Opens nothing and releases nothing, so it needs no
 * policy decision; the callers (rights) audit their own use.
 */
export interface VaultSubjects {
  customerExists(customerId: string): Promise<boolean>;
}

export function createVaultSubjects(db: Kysely<Database>): VaultSubjects {
  return {
    async customerExists(customerId) {
      const row = await db.selectFrom('records').select('id').where('id', '=', customerId).where('collection', '=', 'customers').executeTakeFirst();
      return row !== undefined;
    },
  };
}
