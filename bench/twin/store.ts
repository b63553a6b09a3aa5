import type { Kysely } from 'kysely';
import { openStore, type Store } from '../../src/store/database.ts';
import type { Config } from '../../src/config/config.ts';

/**
 * The unprotected twin's storage: the very same `openStore` as Custos (SQLite in WAL mode with
 * synchronous=FULL and the same pragmas; a PostgreSQL pool of the same size and schema handling),
 * holding one plain table. No encryption, no blind index, no audit: the baseline.
 */
export type TwinTables = {
  twin_customers: {
    id: string;
    email: string;
    name: string | null;
    phone: string | null;
    date_of_birth: string | null;
    locale: string | null;
    created_at: string;
    updated_at: string;
  };
};

export interface TwinStore {
  readonly db: Kysely<TwinTables>;
  close(): Promise<void>;
}

export async function openTwinStore(database: Config['database']): Promise<TwinStore> {
  const store: Store = await openStore(database);
  const db = store.db.withTables<TwinTables>() as unknown as Kysely<TwinTables>;
  await db.schema
    .createTable('twin_customers')
    .ifNotExists()
    .addColumn('id', 'text', (c) => c.primaryKey())
    .addColumn('email', 'text', (c) => c.notNull())
    .addColumn('name', 'text')
    .addColumn('phone', 'text')
    .addColumn('date_of_birth', 'text')
    .addColumn('locale', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('updated_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('twin_customers_email').ifNotExists().on('twin_customers').column('email').execute();
  return { db, close: () => store.close() };
}
