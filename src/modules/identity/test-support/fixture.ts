import { createSecretKey, randomBytes } from 'node:crypto';
import { fixedClock } from '../../../kernel/clock.ts';
import { Secret } from '../../../kernel/secret.ts';
import { testStore } from '../../../../test/support/store.ts';
import { createAccountService } from '../accounts/account-service.ts';
import { deriveIdentityKeys } from '../keys.ts';
import { createPasswordService } from '../passwords/password-service.ts';

/**
 * A migrated test database (SQLite, or PostgreSQL when DATABASE_URL says so), a clock that only
 * moves when told, fresh random keys, and the account and password services on top.
 */
export async function identityFixture(start = new Date('2026-03-02T10:00:00.000Z')) {
  const store = await testStore();
  const clock = fixedClock(start);
  const keys = deriveIdentityKeys({ base: createSecretKey(randomBytes(32)), blindIndex: createSecretKey(randomBytes(32)) });
  const passwords = createPasswordService({ policy: { contextWords: ['Acme Outdoor'] } });
  const accounts = createAccountService({ db: store.db, clock, keys, passwords });
  let n = 0;
  return {
    store,
    db: store.db,
    dialect: store.dialect,
    clock,
    keys,
    passwords,
    accounts,
    /** A customer account with a unique email; with a password when one is given. */
    async account(options: { realm?: 'customer' | 'staff'; password?: string } = {}) {
      n += 1;
      const { account } = await accounts.create({
        realm: options.realm ?? 'customer',
        email: `person${n}.${randomBytes(3).toString('hex')}@example.com`,
        ...(options.password === undefined ? {} : { password: new Secret(options.password) }),
      });
      return account;
    },
    async close() {
      await passwords.close();
      await store.close();
    },
  };
}

export type IdentityFixture = Awaited<ReturnType<typeof identityFixture>>;
