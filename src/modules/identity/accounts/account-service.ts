import { randomBytes } from 'node:crypto';
import type { Kysely } from 'kysely';
import type { Clock } from '../../../kernel/clock.ts';
import { fail } from '../../../kernel/errors.ts';
import { newId, type Brand } from '../../../kernel/ids.ts';
import type { Secret } from '../../../kernel/secret.ts';
import type { Database } from '../../../store/schema.ts';
import type { BlindIndexSet, BlindIndexVersion, IndexRebuildStep } from '../../../crypto/blind-index.ts';
import { emailIndex, normaliseEmail, openEmail, sealEmail } from './email.ts';
import { IdentityErrors } from '../errors.ts';
import type { IdentityKeys } from '../keys.ts';
import type { Realm } from '../passwords/password-policy.ts';
import type { PasswordService } from '../passwords/password-service.ts';
import type { PasswordStrength } from '../passwords/password-strength.ts';

/**
 * Sign-in accounts of customers and staff. An account is found by the blind index of its email,
 * holds an argon2id password hash (or none: passkey-only), and may link to a vault customer. The
 * password check is enumeration-safe: an unknown email costs one dummy argon2 verification like a
 * wrong password does (ASVS 6.3.8), and a hash made with old parameters is replaced on sign-in.
 */
export type AccountId = Brand<string, 'AccountId'>;
export const ACCOUNT_ID_PREFIX = 'acc';

export interface AccountInfo {
  readonly id: AccountId;
  readonly realm: Realm;
  readonly email: string;
  readonly customer_id: string | null;
  readonly has_password: boolean;
  readonly email_verified_at: string | null;
  readonly password_changed_at: string | null;
  readonly created_at: string;
  readonly updated_at: string;
}

export interface AccountService {
  /** Creates an account; its password (if any) must pass the single-factor policy. */
  create(input: { realm: Realm; email: string; password?: Secret<string>; customerId?: string }): Promise<{
    account: AccountInfo;
    strength: PasswordStrength | undefined;
  }>;
  get(id: string): Promise<AccountInfo>;
  findByEmail(realm: Realm, email: string): Promise<AccountInfo | undefined>;
  /** The identifier the lockout counts against: stable per typed email, whether an account exists or not. */
  lockoutKey(realm: Realm, email: string): string;
  /** The account when email and password match; undefined otherwise, at the same cost either way. */
  authenticate(input: { realm: Realm; email: string; password: Secret<string> }): Promise<AccountInfo | undefined>;
  /**
   * Sets a new password under the policy for this account's factors (NIST SP 800-63B §3.1.1.2).
   * `beforeStore` runs once the password passed every rule and is hashed, just before it is
   * stored; if it throws, nothing is stored (a reset link is spent there, and only there).
   */
  setPassword(id: string, password: Secret<string>, beforeStore?: () => Promise<void>): Promise<{ strength: PasswordStrength }>;
  /** True when TOTP is on or a passkey is registered: the 8-character minimum applies. */
  hasSecondFactor(id: string): Promise<boolean>;
  /**
   * A new sign-up of an address whose account is still unverified: its password becomes the new
   * one (hashed under the same policy as creating it) and the second factors enrolled so far are
   * removed. False, with the same hashing done, when the address was verified meanwhile: an
   * owner's account is never changed by a sign-up.
   */
  replacePending(id: string, password: Secret<string>): Promise<boolean>;
  markEmailVerified(id: string): Promise<void>;
  linkCustomer(id: string, customerId: string | null): Promise<void>;
  /** Deletes the account with its factors and links (erasure, account closure). */
  remove(id: string): Promise<void>;
  /**
   * One step of a blind-index rebuild: the accounts after `after` (by id, up to `limit`) without
   * `email_index_next`, given their email's index under `target` there (the email never changes,
   * so no compare-and-swap is needed).
   */
  reindexBatch(after: string, limit: number, target: BlindIndexVersion): Promise<IndexRebuildStep>;
  /** The ids of the accounts linked to a vault customer (erasure closes them). */
  idsForCustomer(customerId: string): Promise<string[]>;
}

type Row = Database['identity_accounts'];

function isUniqueViolation(error: unknown): boolean {
  const code = (error as { code?: unknown }).code;
  return code === '23505' || code === 'SQLITE_CONSTRAINT_UNIQUE';
}

export function createAccountService(deps: {
  db: Kysely<Database>;
  clock: Clock;
  keys: Pick<IdentityKeys, 'emailIndex' | 'emailSeal'>;
  passwords: PasswordService;
}): AccountService {
  const { db, clock, keys, passwords } = deps;

  function email(raw: string): string {
    const n = normaliseEmail(raw);
    if (n === undefined) fail(IdentityErrors.IDENTITY_EMAIL_INVALID, 'email is not a well-formed address');
    return n;
  }

  function toInfo(row: Row): AccountInfo {
    const address = openEmail(keys.emailSeal, row.id, row.email_sealed);
    if (address === undefined) throw new Error(`the email of account ${row.id} failed to decrypt`);
    return {
      id: row.id as AccountId,
      realm: row.realm,
      email: address,
      customer_id: row.customer_id,
      has_password: row.password_hash !== null,
      email_verified_at: row.email_verified_at,
      password_changed_at: row.password_changed_at,
      created_at: row.created_at,
      updated_at: row.updated_at,
    };
  }

  async function row(id: string): Promise<Row> {
    const found = await db.selectFrom('identity_accounts').selectAll().where('id', '=', id).executeTakeFirst();
    if (found === undefined) fail(IdentityErrors.IDENTITY_ACCOUNT_NOT_FOUND, 'no account with that id');
    return found;
  }

  async function byEmail(realm: Realm, raw: string): Promise<Row | undefined> {
    const n = normaliseEmail(raw);
    if (n === undefined) return undefined;
    // Under every blind-index version in force: during a rebuild `email_index` holds the old one,
    // after it the new one (src/crypto/blind-index-rotation.ts).
    return keys.emailIndex.lookup((set) =>
      db
        .selectFrom('identity_accounts')
        .selectAll()
        .where('realm', '=', realm)
        .where('email_index', 'in', set.versions.map((v) => emailIndex(v.key, n)))
        .executeTakeFirst(),
    );
  }

  async function hasSecondFactor(id: string): Promise<boolean> {
    const totp = await db
      .selectFrom('identity_totp')
      .select('account_id')
      .where('account_id', '=', id)
      .where('enabled_at', 'is not', null)
      .executeTakeFirst();
    if (totp !== undefined) return true;
    const passkey = await db.selectFrom('identity_passkeys').select('credential_id').where('account_id', '=', id).limit(1).executeTakeFirst();
    return passkey !== undefined;
  }

  async function touch(id: string, set: Partial<Row>): Promise<void> {
    const result = await db
      .updateTable('identity_accounts')
      .set({ ...set, updated_at: clock.now().toISOString() })
      .where('id', '=', id)
      .executeTakeFirst();
    if (Number(result.numUpdatedRows) === 0) fail(IdentityErrors.IDENTITY_ACCOUNT_NOT_FOUND, 'no account with that id');
  }

  return {
    async reindexBatch(after, limit, target) {
      const rows = await db
        .selectFrom('identity_accounts')
        .select(['id', 'email_sealed'])
        .where('id', '>', after)
        .where('email_index_next', 'is', null)
        .orderBy('id')
        .limit(limit)
        .execute();
      const step: IndexRebuildStep = { next: rows.at(-1)?.id, examined: rows.length, rebuilt: 0, failed: [] };
      await db.transaction().execute(async (tx) => {
        for (const row of rows) {
          const address = openEmail(keys.emailSeal, row.id, row.email_sealed);
          if (address === undefined) {
            step.failed.push(row.id);
            continue;
          }
          const result = await tx
            .updateTable('identity_accounts')
            .set({ email_index_next: emailIndex(target.key, address) })
            .where('id', '=', row.id)
            .where('email_index_next', 'is', null)
            .executeTakeFirst();
          step.rebuilt += Number(result.numUpdatedRows);
        }
      });
      return step;
    },

    async create(input) {
      const address = email(input.email);
      const now = clock.now();
      const hashed =
        input.password === undefined
          ? undefined
          : await passwords.hashNew(input.password, { realm: input.realm, secondFactor: false, email: address });
      const id = newId(ACCOUNT_ID_PREFIX, now.getTime());
      const at = now.toISOString();
      // During a blind-index rebuild: the old version in `email_index` (where uniqueness holds for
      // every account), the new one in `email_index_next`.
      const indexed = (set: BlindIndexSet) => ({
        email_index: emailIndex(set.versions.at(-1)!.key, address),
        email_index_next: set.versions.length > 1 ? emailIndex(set.versions[0]!.key, address) : null,
      });
      const values: Row = {
        id,
        realm: input.realm,
        ...indexed(keys.emailIndex.current()),
        email_sealed: sealEmail(keys.emailSeal, id, address),
        customer_id: input.customerId ?? null,
        password_hash: hashed?.hash ?? null,
        password_changed_at: hashed === undefined ? null : at,
        email_verified_at: null,
        user_handle: randomBytes(16).toString('base64url'),
        created_at: at,
        updated_at: at,
      };
      try {
        await keys.emailIndex.writing((set) =>
          db.transaction().execute(async (tx) => {
            await keys.emailIndex.guard(tx, set);
            await tx.insertInto('identity_accounts').values({ ...values, ...indexed(set) }).execute();
          }),
        );
      } catch (error) {
        if (isUniqueViolation(error)) fail(IdentityErrors.IDENTITY_EMAIL_TAKEN, 'an account of this realm already uses that email');
        throw error;
      }
      return { account: toInfo(values), strength: hashed?.strength };
    },

    get: async (id) => toInfo(await row(id)),

    async findByEmail(realm, raw) {
      const found = await byEmail(realm, raw);
      return found === undefined ? undefined : toInfo(found);
    },

    lockoutKey(realm, raw) {
      const n = normaliseEmail(raw) ?? raw.trim().normalize('NFC').toLowerCase();
      // The oldest version in force: the same all through a rebuild (a rotation resets counters once, when it ends).
      return `${realm}:${emailIndex(keys.emailIndex.current().versions.at(-1)!.key, n)}`;
    },

    async authenticate({ realm, email: raw, password }) {
      const found = await byEmail(realm, raw);
      const result = await passwords.verify(found?.password_hash, password);
      if (found === undefined || !result.valid) return undefined;
      if (result.needsRehash && found.password_hash !== null) {
        // Conditional on the hash just verified: a concurrent password change wins.
        await db
          .updateTable('identity_accounts')
          .set({ password_hash: await passwords.rehash(password) })
          .where('id', '=', found.id)
          .where('password_hash', '=', found.password_hash)
          .execute();
      }
      return toInfo(found);
    },

    async setPassword(id, password, beforeStore) {
      const current = await row(id);
      const address = toInfo(current).email;
      const secondFactor = await hasSecondFactor(id);
      const { hash, strength } = await passwords.hashNew(password, { realm: current.realm, secondFactor, email: address });
      await beforeStore?.();
      await touch(id, { password_hash: hash, password_changed_at: clock.now().toISOString() });
      return { strength };
    },

    hasSecondFactor,

    async replacePending(id, password) {
      const current = toInfo(await row(id));
      const { hash } = await passwords.hashNew(password, { realm: current.realm, secondFactor: false, email: current.email });
      const at = clock.now().toISOString();
      return db.transaction().execute(async (tx) => {
        const result = await tx
          .updateTable('identity_accounts')
          .set({ password_hash: hash, password_changed_at: at, updated_at: at })
          .where('id', '=', id)
          .where('email_verified_at', 'is', null)
          .executeTakeFirst();
        if (Number(result.numUpdatedRows) !== 1) return false;
        // Factors whoever signed up before enrolled are theirs, not the new sign-up's.
        await tx.deleteFrom('identity_totp').where('account_id', '=', id).execute();
        await tx.deleteFrom('identity_recovery_codes').where('account_id', '=', id).execute();
        await tx.deleteFrom('identity_passkeys').where('account_id', '=', id).execute();
        return true;
      });
    },

    async markEmailVerified(id) {
      await touch(id, { email_verified_at: clock.now().toISOString() });
    },

    async linkCustomer(id, customerId) {
      await touch(id, { customer_id: customerId });
    },

    async remove(id) {
      await db.deleteFrom('identity_accounts').where('id', '=', id).execute();
    },

    async idsForCustomer(customerId) {
      const rows = await db.selectFrom('identity_accounts').select('id').where('customer_id', '=', customerId).execute();
      return rows.map((r) => r.id);
    },
  };
}
