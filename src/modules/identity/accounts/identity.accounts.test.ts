import { hash as argon2Hash } from '@node-rs/argon2';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../../kernel/errors.ts';
import { Secret } from '../../../kernel/secret.ts';
import { createAccountService } from './account-service.ts';
import { createPasswordService } from '../passwords/password-service.ts';
import { identityFixture, type IdentityFixture } from '../test-support/fixture.ts';

let f: IdentityFixture;
beforeEach(async () => {
  f = await identityFixture();
});
afterEach(() => f.close());

const s = (v: string) => new Secret(v);
const PASSWORD = 'violet umbrella sings';

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (error) {
    if (error instanceof AppError) return error.code;
    throw error;
  }
}

describe('accounts', () => {
  it('keeps the email out of the database in the clear, and finds the account by it in any letter case', async () => {
    const { account } = await f.accounts.create({ realm: 'customer', email: ' Jane.Doe@Example.COM ', password: s(PASSWORD), customerId: 'cus_1' });
    expect(account).toMatchObject({ realm: 'customer', email: 'jane.doe@example.com', customer_id: 'cus_1', has_password: true });
    const row = await f.db.selectFrom('identity_accounts').selectAll().executeTakeFirstOrThrow();
    expect(JSON.stringify(row).toLowerCase()).not.toContain('jane');
    expect(row.password_hash).toMatch(/^\$argon2id\$/);
    expect((await f.accounts.findByEmail('customer', 'JANE.doe@example.com'))?.id).toBe(account.id);
    expect(await f.accounts.findByEmail('staff', 'jane.doe@example.com')).toBeUndefined();
    expect(f.accounts.lockoutKey('customer', 'JANE.DOE@example.com')).toBe(f.accounts.lockoutKey('customer', 'jane.doe@example.com'));
    expect(f.accounts.lockoutKey('customer', 'x')).not.toContain('x@');
  });

  it('refuses a second account with the same email in one realm, allows it in the other, refuses bad addresses', async () => {
    await f.accounts.create({ realm: 'customer', email: 'sam@example.com' });
    expect(await code(f.accounts.create({ realm: 'customer', email: 'SAM@example.com' }))).toBe('IDENTITY_EMAIL_TAKEN');
    expect(await code(f.accounts.create({ realm: 'staff', email: 'sam@example.com' }))).toBe('ok');
    expect(await code(f.accounts.create({ realm: 'customer', email: 'not-an-address' }))).toBe('IDENTITY_EMAIL_INVALID');
  });

  it('applies the password policy with the email as context', async () => {
    expect(await code(f.accounts.create({ realm: 'customer', email: 'marguerite@example.com', password: s('marguerite-forever-1') }))).toBe(
      'IDENTITY_PASSWORD_CONTEXT',
    );
    expect(await f.db.selectFrom('identity_accounts').select('id').execute()).toHaveLength(0);
  });

  it('fails closed when an email ciphertext is moved to another account', async () => {
    const a = await f.account();
    const b = await f.account();
    const sealed = (await f.db.selectFrom('identity_accounts').select('email_sealed').where('id', '=', a.id).executeTakeFirstOrThrow()).email_sealed;
    await f.db.updateTable('identity_accounts').set({ email_sealed: sealed }).where('id', '=', b.id).execute();
    await expect(f.accounts.get(b.id)).rejects.toThrow(/failed to decrypt/);
  });

  it('authenticates the right password only, and answers unknown emails the same way', async () => {
    const { account } = await f.accounts.create({ realm: 'customer', email: 'kim@example.com', password: s(PASSWORD) });
    expect((await f.accounts.authenticate({ realm: 'customer', email: 'KIM@example.com', password: s(PASSWORD) }))?.id).toBe(account.id);
    expect(await f.accounts.authenticate({ realm: 'customer', email: 'kim@example.com', password: s('violet umbrella sing') })).toBeUndefined();
    expect(await f.accounts.authenticate({ realm: 'customer', email: 'nobody@example.com', password: s(PASSWORD) })).toBeUndefined();
    expect(await f.accounts.authenticate({ realm: 'staff', email: 'kim@example.com', password: s(PASSWORD) })).toBeUndefined();
    const passkeyOnly = await f.account();
    expect(await f.accounts.authenticate({ realm: 'customer', email: passkeyOnly.email, password: s('') })).toBeUndefined();
  });

  it('rehashes on sign-in when the stored hash has old parameters', async () => {
    const { account } = await f.accounts.create({ realm: 'customer', email: 'lee@example.com' });
    const old = await argon2Hash(PASSWORD, { memoryCost: 19_456, timeCost: 2, parallelism: 1 });
    await f.db.updateTable('identity_accounts').set({ password_hash: old }).where('id', '=', account.id).execute();
    const stronger = createPasswordService({ hashing: { timeCost: 3 } });
    try {
      const accounts = createAccountService({ db: f.db, clock: f.clock, keys: f.keys, passwords: stronger });
      expect((await accounts.authenticate({ realm: 'customer', email: 'lee@example.com', password: s(PASSWORD) }))?.id).toBe(account.id);
      const row = await f.db.selectFrom('identity_accounts').select('password_hash').where('id', '=', account.id).executeTakeFirstOrThrow();
      expect(row.password_hash).toContain('t=3');
      expect((await accounts.authenticate({ realm: 'customer', email: 'lee@example.com', password: s(PASSWORD) }))?.id).toBe(account.id);
    } finally {
      await stronger.close();
    }
  });

  it('takes the shorter minimum only once a second factor is on', async () => {
    const account = await f.account({ password: PASSWORD });
    expect(await code(f.accounts.setPassword(account.id, s('plum-fig9')))).toBe('IDENTITY_PASSWORD_TOO_SHORT');
    await f.db
      .insertInto('identity_totp')
      .values({ account_id: account.id, secret_sealed: 'x', enabled_at: f.clock.now().toISOString(), last_step: null, created_at: f.clock.now().toISOString() })
      .execute();
    expect(await code(f.accounts.setPassword(account.id, s('plum-fig9')))).toBe('ok');
    expect((await f.accounts.authenticate({ realm: 'customer', email: account.email, password: s('plum-fig9') }))?.id).toBe(account.id);
  });

  it('marks the email verified, links a customer, and removes the account with its factors', async () => {
    const account = await f.account();
    await f.accounts.markEmailVerified(account.id);
    await f.accounts.linkCustomer(account.id, 'cus_2');
    expect(await f.accounts.get(account.id)).toMatchObject({ customer_id: 'cus_2', email_verified_at: f.clock.now().toISOString() });
    await f.db
      .insertInto('identity_totp')
      .values({ account_id: account.id, secret_sealed: 'x', enabled_at: null, last_step: null, created_at: f.clock.now().toISOString() })
      .execute();
    await f.accounts.remove(account.id);
    expect(await code(f.accounts.get(account.id))).toBe('IDENTITY_ACCOUNT_NOT_FOUND');
    expect(await f.db.selectFrom('identity_totp').select('account_id').execute()).toHaveLength(0);
    expect(await code(f.accounts.markEmailVerified(account.id))).toBe('IDENTITY_ACCOUNT_NOT_FOUND');
  });
});
