import { fixedBlindIndexKeys } from '../../../crypto/blind-index.ts';
import { createSecretKey, randomBytes } from 'node:crypto';
import { Secret as OtpSecret, TOTP } from 'otpauth';
import { testStore } from '../../../../test/support/store.ts';
import { createKeyStore } from '../../../crypto/key-store.ts';
import { fixedClock } from '../../../kernel/clock.ts';
import { AppError } from '../../../kernel/errors.ts';
import { Secret } from '../../../kernel/secret.ts';
import { testAuditKeys, testAuditLog } from '../../audit/testing.ts';
import { createAccountService } from '../../identity/accounts/account-service.ts';
import { deriveIdentityKeys } from '../../identity/keys.ts';
import { createPasswordService } from '../../identity/passwords/password-service.ts';
import { createRecoveryCodeService } from '../../identity/factors/recovery-codes.ts';
import { createTotpService } from '../../identity/factors/totp-service.ts';
import { loadInventory } from '../../inventory/index.ts';
import { createPolicyService, type Actor } from '../../policy/service.ts';
import { createVaultService, type Values } from '../../vault/service.ts';
import { deriveStaffKeys } from '../keys.ts';
import { CLI_OPERATOR, type StaffContext } from '../ports.ts';
import { createStaffServices } from '../services.ts';
import { utcToday } from '../training-dates.ts';

/**
 * A whole staff setting on a fresh test database (SQLite, or PostgreSQL when DATABASE_URL says
 * so): real identity accounts and TOTP, the real audit log, the real vault behind a policy with
 * the staff guard, a clock that moves only when told, and a mailer that keeps what it is given.
 */
export async function staffFixture(options: { start?: Date; validityMonths?: number } = {}) {
  const store = await testStore();
  const clock = fixedClock(options.start ?? new Date('2026-03-02T10:00:00.000Z'));
  const inventory = loadInventory();
  const rootKeys = testAuditKeys();
  const audit = testAuditLog(store, rootKeys, { clock });
  const identityKeys = deriveIdentityKeys({ base: createSecretKey(randomBytes(32)), blindIndex: rootKeys.blindIndex });
  const passwords = createPasswordService({ policy: { contextWords: ['Acme Outdoor'] } });
  const accounts = createAccountService({ db: store.db, clock, keys: identityKeys, passwords });
  const recovery = createRecoveryCodeService({ db: store.db, clock, key: identityKeys.recoveryMac });
  const totp = createTotpService({ db: store.db, clock, key: identityKeys.totpSeal, recovery, issuer: 'Acme Outdoor' });
  const mails: { to: string; subject: string; text: string }[] = [];
  const staffKeys = deriveStaffKeys({ base: createSecretKey(randomBytes(32)) });
  const staff = createStaffServices({
    db: store.db,
    clock,
    audit,
    accounts,
    keys: staffKeys,
    knownPurposes: inventory.purposes,
    invitationUrl: 'https://admin.example.test/staff/accept',
    mailer: { send: async (m) => void mails.push(m) },
    ...(options.validityMonths === undefined ? {} : { trainingValidityMonths: options.validityMonths }),
  });
  const keys = createKeyStore({ db: store.db, kekWrap: rootKeys.kekWrap, clock });
  await keys.init();
  const policy = createPolicyService({ inventory, guards: [staff.guard] });
  const vault = createVaultService({ db: store.db, dialect: store.dialect, read: store.read, ...(store.batch === undefined ? {} : { batch: store.batch }), keys, blindIndex: fixedBlindIndexKeys(rootKeys.blindIndex), inventory, policy, audit, clock });
  const shop: Actor = { ref: 'apikey:key_shop', kind: 'apikey', purposes: [...inventory.purposes.keys()] };
  let n = 0;

  /** The token of the last invitation mailed to `email`. */
  const tokenFor = (email: string) => {
    const mail = mails.filter((m) => m.to === email).at(-1);
    const token = /#token=([^\s]+)/.exec(mail?.text ?? '')?.[1];
    if (token === undefined) throw new Error('no invitation mailed');
    return new Secret(token);
  };

  async function enrolTotp(accountId: string): Promise<void> {
    const enrolment = await totp.begin(accountId, 'staff');
    const code = TOTP.generate({ secret: OtpSecret.fromBase32(enrolment.secret.reveal()), period: 30, digits: 6, timestamp: clock.now().getTime() });
    await totp.confirm(accountId, new Secret(code));
  }

  let stored = 0;
  return {
    store,
    db: store.db,
    clock,
    audit,
    accounts,
    totp,
    inventory,
    staff,
    staffKeys,
    vault,
    mails,
    tokenFor,
    enrolTotp,

    /** A staff member: invited, accepted, by default with TOTP on and required training done today. */
    async member(role: string, opts: { mfa?: boolean; trained?: boolean } = {}) {
      n += 1;
      const email = `staff${n}.${randomBytes(3).toString('hex')}@shop.example`;
      const { member } = await staff.members.create(CLI_OPERATOR, { email, role });
      await staff.members.acceptInvitation({ token: tokenFor(email), password: new Secret(`Quill-${randomBytes(9).toString('base64url')}-tundra`) });
      if (opts.mfa !== false) await enrolTotp(member.accountId);
      if (opts.trained !== false)
        for (const c of await staff.training.listCourses())
          if (c.requiredFor === 'all' || c.requiredFor.includes(role))
            await staff.training.recordCompletion(CLI_OPERATOR, { memberId: member.id, course: c.name, completedOn: utcToday(clock.now()) });
      const ctx: StaffContext = { memberId: member.id, role, mfaVerifiedAt: null };
      return { id: member.id, accountId: member.accountId, email, ctx };
    },

    /** A customer stored by the shop's backend. */
    async customer(values?: Values) {
      // An email belongs to one customer record: the second default customer gets its own address.
      stored += 1;
      const email = stored === 1 ? 'ada@example.org' : `ada+${stored}@example.org`;
      const body = values ?? { email, name: 'Ada Lovelace', phone: '+44 20 7946 0958', date_of_birth: '1815-12-10' };
      const { id } = await vault.create({ actor: shop, purpose: 'account', requestId: 'setup' }, 'customers', undefined, body);
      return id;
    },

    /** Reads a customer as a staff member, the way a staff session would. */
    async read(memberId: string, purpose: string, customerId: string) {
      return vault.readCustomer({ actor: await staff.actorFor(memberId), purpose, requestId: 'req-staff' }, customerId);
    },

    async close() {
      await audit.stop();
      await passwords.close();
      await store.close();
    },
  };
}

export type StaffFixture = Awaited<ReturnType<typeof staffFixture>>;

/** The error code a promise rejects with, or 'ok'. */
export async function codeOf(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (error) {
    if (error instanceof AppError) return error.code;
    throw error;
  }
}
