import fc from 'fast-check';
import { Secret as OtpSecret, TOTP } from 'otpauth';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../../kernel/errors.ts';
import { Secret } from '../../../kernel/secret.ts';
import { createRecoveryCodeService, generateRecoveryCode, normaliseRecoveryCode, type RecoveryCodeService } from './recovery-codes.ts';
import { identityFixture, type IdentityFixture } from '../test-support/fixture.ts';
import { createTotpService, type TotpService } from './totp-service.ts';

let f: IdentityFixture;
let totp: TotpService;
let recovery: RecoveryCodeService;

beforeEach(async () => {
  f = await identityFixture();
  recovery = createRecoveryCodeService({ db: f.db, clock: f.clock, key: f.keys.recoveryMac });
  totp = createTotpService({ db: f.db, clock: f.clock, key: f.keys.totpSeal, recovery, issuer: 'Acme Outdoor' });
});
afterEach(() => f.close());

const s = (v: string) => new Secret(v);
const codeAt = (secret: string, ms: number) => TOTP.generate({ secret: OtpSecret.fromBase32(secret), period: 30, digits: 6, timestamp: ms });

async function code(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (error) {
    if (error instanceof AppError) return error.code;
    throw error;
  }
}

/** An account with TOTP on; returns its base32 secret and recovery codes. */
async function enrolled() {
  const account = await f.account();
  const enrolment = await totp.begin(account.id, account.email);
  const secret = enrolment.secret.reveal();
  const { recoveryCodes } = await totp.confirm(account.id, s(codeAt(secret, f.clock.now().getTime())));
  f.clock.advance(30_000); // the confirming code's step is used up
  return { account, secret, recoveryCodes: recoveryCodes.reveal() };
}

describe('TOTP enrolment (RFC 6238)', () => {
  it('returns an otpauth URI and a PNG QR code, and keeps the secret encrypted at rest', async () => {
    const account = await f.account();
    const enrolment = await totp.begin(account.id, account.email);
    const uri = enrolment.otpauth_uri.reveal();
    expect(uri).toMatch(/^otpauth:\/\/totp\/Acme%20Outdoor:/);
    expect(uri).toContain('period=30');
    expect(uri).toContain('digits=6');
    expect(enrolment.qr_code.reveal()).toMatch(/^data:image\/png;base64,/);
    expect(String(enrolment.secret)).toBe('[redacted]');
    const row = await f.db.selectFrom('identity_totp').selectAll().executeTakeFirstOrThrow();
    const secret = enrolment.secret.reveal();
    expect(row.secret_sealed).not.toContain(secret);
    expect(Buffer.from(row.secret_sealed, 'base64url').toString('latin1')).not.toContain(OtpSecret.fromBase32(secret).latin1);
    expect(row.enabled_at).toBeNull();
  });

  it('turns on only with a valid first code, and returns ten recovery codes once', async () => {
    const account = await f.account();
    const enrolment = await totp.begin(account.id, account.email);
    expect(await code(totp.confirm(account.id, s('000000')))).toBe('IDENTITY_TOTP_INVALID');
    expect(await totp.status(account.id)).toEqual({ enabled: false, pending: true });
    const { recoveryCodes } = await totp.confirm(account.id, s(codeAt(enrolment.secret.reveal(), f.clock.now().getTime())));
    expect(recoveryCodes.reveal()).toHaveLength(10);
    expect(new Set(recoveryCodes.reveal()).size).toBe(10);
    expect(await totp.status(account.id)).toEqual({ enabled: true, pending: false });
    expect(await f.accounts.hasSecondFactor(account.id)).toBe(true);
    expect(await code(totp.begin(account.id, account.email))).toBe('IDENTITY_TOTP_ALREADY_ENABLED');
    const stored = await f.db.selectFrom('identity_recovery_codes').select('code_hash').execute();
    for (const c of recoveryCodes.reveal()) expect(stored.map((r) => r.code_hash).join()).not.toContain(c);
  });

  it('refuses confirm without enrolment and verify while not enabled', async () => {
    const account = await f.account();
    expect(await code(totp.confirm(account.id, s('123456')))).toBe('IDENTITY_TOTP_NOT_STARTED');
    expect(await code(totp.verify(account.id, s('123456')))).toBe('IDENTITY_TOTP_NOT_ENABLED');
  });
});

describe('TOTP verification', () => {
  it('accepts the current code, and the previous and next step for clock drift, but not two steps away', async () => {
    const { account, secret } = await enrolled();
    f.clock.advance(60_000); // two steps past the confirming code, so the previous step is unused
    const now = () => f.clock.now().getTime();
    expect(await code(totp.verify(account.id, s(codeAt(secret, now() - 60_000))))).toBe('IDENTITY_TOTP_INVALID');
    expect(await code(totp.verify(account.id, s(codeAt(secret, now() - 30_000))))).toBe('ok');
    f.clock.advance(30_000);
    expect(await code(totp.verify(account.id, s(codeAt(secret, now()))))).toBe('ok');
    f.clock.advance(30_000);
    expect(await code(totp.verify(account.id, s(codeAt(secret, now() + 30_000))))).toBe('ok');
    expect(await code(totp.verify(account.id, s(codeAt(secret, now() + 90_000))))).toBe('IDENTITY_TOTP_INVALID');
    expect(await code(totp.verify(account.id, s('12a456')))).toBe('IDENTITY_TOTP_INVALID');
  });

  it('accepts a code once: a replay in the same window fails, and so does an older code after a newer one', async () => {
    const { account, secret } = await enrolled();
    const now = f.clock.now().getTime();
    const current = codeAt(secret, now);
    expect(await code(totp.verify(account.id, s(current)))).toBe('ok');
    expect(await code(totp.verify(account.id, s(current)))).toBe('IDENTITY_TOTP_REPLAYED');
    f.clock.advance(10_000); // still inside the ±1 window of that step
    expect(await code(totp.verify(account.id, s(current)))).toBe('IDENTITY_TOTP_REPLAYED');
    expect(await code(totp.verify(account.id, s(codeAt(secret, now - 30_000))))).toBe('IDENTITY_TOTP_REPLAYED');
  });

  it('lets exactly one of twenty concurrent uses of the same code through', async () => {
    const { account, secret } = await enrolled();
    const current = codeAt(secret, f.clock.now().getTime());
    const results = await Promise.all(Array.from({ length: 20 }, () => code(totp.verify(account.id, s(current)))));
    expect(results.filter((r) => r === 'ok')).toHaveLength(1);
    expect(results.filter((r) => r === 'IDENTITY_TOTP_REPLAYED')).toHaveLength(19);
  });

  it("does not accept one account's code for another account", async () => {
    const a = await enrolled();
    const b = await enrolled();
    const now = f.clock.now().getTime();
    expect(await code(totp.verify(b.account.id, s(codeAt(a.secret, now))))).toBe('IDENTITY_TOTP_INVALID');
  });

  it('can be turned off and enrolled again', async () => {
    const { account } = await enrolled();
    await totp.disable(account.id);
    expect(await totp.status(account.id)).toEqual({ enabled: false, pending: false });
    expect(await code(totp.begin(account.id, account.email))).toBe('ok');
  });
});

describe('recovery codes (ASVS 6.5.1, 6.5.2)', () => {
  it('accepts each code once, as typed by people, and counts what is left', async () => {
    const { account, recoveryCodes } = await enrolled();
    const [first, second] = recoveryCodes as [string, string];
    expect(await recovery.consume(account.id, s(first))).toEqual({ remaining: 9 });
    expect(await code(recovery.consume(account.id, s(first)))).toBe('IDENTITY_RECOVERY_CODE_REUSED');
    const typed = ` ${second.toLowerCase().replace(/-/g, ' ').replace(/0/g, 'o')} `;
    expect(await recovery.consume(account.id, s(typed))).toEqual({ remaining: 8 });
    expect(await code(recovery.consume(account.id, s(generateRecoveryCode())))).toBe('IDENTITY_RECOVERY_CODE_INVALID');
    expect(await code(recovery.consume(account.id, s('not a code')))).toBe('IDENTITY_RECOVERY_CODE_INVALID');
  });

  it("refuses another account's code and lets one of ten concurrent uses through", async () => {
    const a = await enrolled();
    const b = await enrolled();
    expect(await code(recovery.consume(b.account.id, s(a.recoveryCodes[0]!)))).toBe('IDENTITY_RECOVERY_CODE_INVALID');
    const results = await Promise.all(Array.from({ length: 10 }, () => code(recovery.consume(a.account.id, s(a.recoveryCodes[1]!)))));
    expect(results.filter((r) => r === 'ok')).toHaveLength(1);
    expect(results.filter((r) => r === 'IDENTITY_RECOVERY_CODE_REUSED')).toHaveLength(9);
  });

  it('regenerating replaces every old code', async () => {
    const { account, recoveryCodes } = await enrolled();
    const fresh = (await recovery.regenerate(account.id)).reveal();
    expect(await code(recovery.consume(account.id, s(recoveryCodes[2]!)))).toBe('IDENTITY_RECOVERY_CODE_INVALID');
    expect(await recovery.consume(account.id, s(fresh[0]!))).toEqual({ remaining: 9 });
  });

  it('codes carry 120 bits and survive normalisation in any typed form', () => {
    fc.assert(
      fc.property(fc.constant(null), fc.boolean(), fc.boolean(), (_, lower, spaces) => {
        const c = generateRecoveryCode();
        expect(c).toMatch(/^([0-9A-HJKMNP-TV-Z]{4}-){5}[0-9A-HJKMNP-TV-Z]{4}$/);
        let typed = lower ? c.toLowerCase() : c;
        if (spaces) typed = typed.replace(/-/g, ' ');
        return normaliseRecoveryCode(typed) === c.replace(/-/g, '');
      }),
      { numRuns: 500 },
    );
    fc.assert(fc.property(fc.string({ maxLength: 80 }), (raw) => {
      const n = normaliseRecoveryCode(raw);
      return n === undefined || (n.length === 24 && normaliseRecoveryCode(n) === n);
    }));
  });
});
