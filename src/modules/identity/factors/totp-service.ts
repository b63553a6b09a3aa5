import type { Kysely } from 'kysely';
import { Secret as OtpSecret, TOTP } from 'otpauth';
import QRCode from 'qrcode';
import type { Clock } from '../../../kernel/clock.ts';
import { fail } from '../../../kernel/errors.ts';
import { Secret } from '../../../kernel/secret.ts';
import type { Database } from '../../../store/schema.ts';
import { IdentityErrors } from '../errors.ts';
import type { RecoveryCodeService } from './recovery-codes.ts';
import { openVersioned, sealVersioned, type KeyVersions } from '../../../crypto/key-versions.ts';

/**
 * Authenticator apps (TOTP, RFC 6238): SHA-1, 6 digits, 30-second steps, so every common app
 * works; codes of the previous and next step are accepted for clock drift (RFC 6238 §5.2, window
 * ±1). A code is accepted once: the last accepted time step is kept per account and moved forward
 * by one conditional UPDATE, so a replay — even two requests racing with the same code — fails
 * (ASVS 6.5.1, RFC 6238 §5.2). The shared secret is encrypted at rest (ASVS 6.5.x; AES-256-GCM
 * bound to the account). Confirming the first code turns TOTP on and issues recovery codes.
 */
export const TOTP_PERIOD = 30;
export const TOTP_DIGITS = 6;
export const TOTP_WINDOW = 1;

export interface TotpEnrolment {
  /** otpauth:// URI (contains the secret). */
  readonly otpauth_uri: Secret<string>;
  /** The same URI as a PNG QR code, as a data: URL. */
  readonly qr_code: Secret<string>;
  /** The secret in base32, for typing in by hand. */
  readonly secret: Secret<string>;
}

export interface TotpService {
  /**
   * Starts (or restarts) enrolment with a fresh secret; refused while TOTP is on. `accountName`
   * is the account's email: the app shows it under the shop's name, so that two accounts in one
   * app can be told apart.
   */
  begin(accountId: string, accountName: string): Promise<TotpEnrolment>;
  /** The first valid code turns TOTP on; returns ten recovery codes, shown once. */
  confirm(accountId: string, code: Secret<string>): Promise<{ recoveryCodes: Secret<readonly string[]> }>;
  /** Accepts a current code once; throws IDENTITY_TOTP_INVALID, IDENTITY_TOTP_REPLAYED or IDENTITY_TOTP_NOT_ENABLED. */
  verify(accountId: string, code: Secret<string>): Promise<void>;
  disable(accountId: string): Promise<void>;
  status(accountId: string): Promise<{ enabled: boolean; pending: boolean }>;
}

const aad = (accountId: string) => `custos:identity|identity_totp|${accountId}|secret`;
const CODE = /^\d{6}$/;

export function createTotpService(deps: {
  db: Kysely<Database>;
  clock: Clock;
  key: KeyVersions;
  recovery: RecoveryCodeService;
  /** Shown in the authenticator app: the shop's name. */
  issuer: string;
}): TotpService {
  const { db, clock, key, recovery, issuer } = deps;

  // Key URI format: the label is `issuer:account name` and the issuer parameter repeats the issuer;
  // neither part may contain a colon of its own.
  const noColon = (text: string) => text.replace(/:/g, '').trim();
  const totpOf = (secret: Buffer, accountName = 'account') =>
    new TOTP({
      issuer: noColon(issuer),
      label: noColon(accountName),
      algorithm: 'SHA1',
      digits: TOTP_DIGITS,
      period: TOTP_PERIOD,
      secret: new OtpSecret({ buffer: new Uint8Array(secret).buffer }),
    });

  async function load(accountId: string) {
    return db.selectFrom('identity_totp').selectAll().where('account_id', '=', accountId).executeTakeFirst();
  }

  /** The time step the code belongs to, or undefined when it matches none in the window. */
  function stepOf(sealed: string, accountId: string, code: Secret<string>): number | undefined {
    const token = code.reveal().replace(/\s/g, '');
    if (!CODE.test(token)) return undefined;
    const secret = openVersioned(key, sealed, aad(accountId));
    if (secret === undefined) throw new Error(`the TOTP secret of account ${accountId} failed to decrypt`);
    const timestamp = clock.now().getTime();
    const delta = totpOf(secret).validate({ token, timestamp, window: TOTP_WINDOW });
    return delta === null ? undefined : TOTP.counter({ period: TOTP_PERIOD, timestamp }) + delta;
  }

  return {
    async begin(accountId, accountName) {
      const account = await db.selectFrom('identity_accounts').select('id').where('id', '=', accountId).executeTakeFirst();
      if (account === undefined) fail(IdentityErrors.IDENTITY_ACCOUNT_NOT_FOUND, 'no account with that id');
      const raw = new OtpSecret({ size: 20 });
      const secret = Buffer.from(raw.bytes);
      const sealed = sealVersioned(key, secret, aad(accountId));
      const at = clock.now().toISOString();
      const result = await db
        .insertInto('identity_totp')
        .values({ account_id: accountId, secret_sealed: sealed, enabled_at: null, last_step: null, created_at: at })
        .onConflict((oc) =>
          oc
            .column('account_id')
            .doUpdateSet({ secret_sealed: sealed, last_step: null, created_at: at })
            .where('identity_totp.enabled_at', 'is', null),
        )
        .executeTakeFirst();
      if (Number(result.numInsertedOrUpdatedRows ?? 0n) === 0)
        fail(IdentityErrors.IDENTITY_TOTP_ALREADY_ENABLED, 'an authenticator app is already turned on');
      const uri = totpOf(secret, accountName).toString();
      return {
        otpauth_uri: new Secret(uri),
        qr_code: new Secret(await QRCode.toDataURL(uri, { errorCorrectionLevel: 'M' })),
        secret: new Secret(raw.base32),
      };
    },

    async confirm(accountId, code) {
      const row = await load(accountId);
      if (row === undefined) fail(IdentityErrors.IDENTITY_TOTP_NOT_STARTED, 'no authenticator enrolment is waiting');
      if (row.enabled_at !== null) fail(IdentityErrors.IDENTITY_TOTP_ALREADY_ENABLED, 'an authenticator app is already turned on');
      const step = stepOf(row.secret_sealed, accountId, code);
      if (step === undefined) fail(IdentityErrors.IDENTITY_TOTP_INVALID, 'the authenticator code is not valid');
      return db.transaction().execute(async (tx) => {
        const result = await tx
          .updateTable('identity_totp')
          .set({ enabled_at: clock.now().toISOString(), last_step: step })
          .where('account_id', '=', accountId)
          .where('secret_sealed', '=', row.secret_sealed)
          .where('enabled_at', 'is', null)
          .executeTakeFirst();
        if (Number(result.numUpdatedRows) !== 1)
          fail(IdentityErrors.IDENTITY_TOTP_NOT_STARTED, 'the enrolment was confirmed or restarted meanwhile');
        return { recoveryCodes: await recovery.regenerate(accountId, tx) };
      });
    },

    async verify(accountId, code) {
      const row = await load(accountId);
      if (row === undefined || row.enabled_at === null) fail(IdentityErrors.IDENTITY_TOTP_NOT_ENABLED, 'no authenticator app is turned on');
      const step = stepOf(row.secret_sealed, accountId, code);
      if (step === undefined) fail(IdentityErrors.IDENTITY_TOTP_INVALID, 'the authenticator code is not valid');
      const result = await db
        .updateTable('identity_totp')
        .set({ last_step: step })
        .where('account_id', '=', accountId)
        .where('enabled_at', 'is not', null)
        .where((eb) => eb.or([eb('last_step', 'is', null), eb('last_step', '<', step)]))
        .executeTakeFirst();
      if (Number(result.numUpdatedRows) !== 1)
        fail(IdentityErrors.IDENTITY_TOTP_REPLAYED, 'the authenticator code was already used; wait for the next one');
    },

    async disable(accountId) {
      await db.deleteFrom('identity_totp').where('account_id', '=', accountId).execute();
    },

    async status(accountId) {
      const row = await load(accountId);
      return { enabled: row?.enabled_at != null, pending: row !== undefined && row.enabled_at === null };
    },
  };
}
