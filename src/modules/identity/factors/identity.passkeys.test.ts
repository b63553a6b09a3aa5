import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AppError } from '../../../kernel/errors.ts';
import type { AccountInfo } from '../accounts/account-service.ts';
import { createPasskeyService, type PasskeyService } from './passkey-service.ts';
import { identityFixture, type IdentityFixture } from '../test-support/fixture.ts';
import { softwareAuthenticator } from '../test-support/software-authenticator.ts';

const ORIGIN = 'https://shop.example';
let f: IdentityFixture;
let passkeys: PasskeyService;

beforeEach(async () => {
  f = await identityFixture();
  passkeys = createPasskeyService({ db: f.db, clock: f.clock, rp: { rpId: 'shop.example', rpName: 'Acme Outdoor', origins: [ORIGIN] } });
});
afterEach(() => f.close());

async function outcome(p: Promise<unknown>): Promise<string> {
  try {
    await p;
    return 'ok';
  } catch (error) {
    if (error instanceof AppError) return error.code;
    throw error;
  }
}

/** An account with a registered software passkey. */
async function registered(options: { counterStep?: number; userVerification?: boolean } = {}) {
  const account = await f.account();
  const authenticator = softwareAuthenticator({ origin: ORIGIN, ...options });
  const creation = await passkeys.registrationOptions({ accountId: account.id, userName: account.email });
  await passkeys.verifyRegistration({ accountId: account.id, response: authenticator.register(creation), name: 'Laptop' });
  return { account, authenticator };
}

describe('passkey registration', () => {
  it('registers a passkey with server-side challenge, discoverable, and no personal data in the user handle', async () => {
    const account = await f.account();
    const authenticator = softwareAuthenticator({ origin: ORIGIN });
    const options = await passkeys.registrationOptions({ accountId: account.id, userName: account.email });
    expect(options.rp).toEqual({ id: 'shop.example', name: 'Acme Outdoor' });
    expect(options.authenticatorSelection).toMatchObject({ residentKey: 'required', requireResidentKey: true });
    expect(Buffer.from(options.user.id, 'base64url')).toHaveLength(16);
    expect(options.user.id).not.toContain(account.id);
    expect(Buffer.from(options.challenge, 'base64url')).toHaveLength(32);
    const info = await passkeys.verifyRegistration({ accountId: account.id, response: authenticator.register(options), name: 'Laptop' });
    expect(info).toMatchObject({ credential_id: authenticator.credentialId, name: 'Laptop', transports: ['internal'], last_used_at: null });
    expect(await passkeys.list(account.id)).toHaveLength(1);
    expect(await f.accounts.hasSecondFactor(account.id)).toBe(true);
    expect(await f.db.selectFrom('identity_webauthn_challenges').selectAll().execute()).toHaveLength(0);
    const again = await passkeys.registrationOptions({ accountId: account.id, userName: account.email });
    expect(again.excludeCredentials?.map((c) => c.id)).toEqual([authenticator.credentialId]);
  });

  it('refuses a replayed registration, a challenge of another account, a wrong origin, and an expired challenge', async () => {
    const a = await f.account();
    const b = await f.account();
    const options = await passkeys.registrationOptions({ accountId: a.id, userName: a.email });
    const response = softwareAuthenticator({ origin: ORIGIN }).register(options);
    expect(await outcome(passkeys.verifyRegistration({ accountId: b.id, response }))).toBe('IDENTITY_PASSKEY_CHALLENGE_INVALID');
    // That attempt took the challenge: the rightful owner cannot use it either.
    expect(await outcome(passkeys.verifyRegistration({ accountId: a.id, response }))).toBe('IDENTITY_PASSKEY_CHALLENGE_INVALID');

    const fresh = await passkeys.registrationOptions({ accountId: a.id, userName: a.email });
    const evil = softwareAuthenticator({ origin: 'https://evil.example' }).register(fresh);
    expect(await outcome(passkeys.verifyRegistration({ accountId: a.id, response: evil }))).toBe('IDENTITY_PASSKEY_INVALID');

    const late = await passkeys.registrationOptions({ accountId: a.id, userName: a.email });
    f.clock.advance(5 * 60_000);
    const lateResponse = softwareAuthenticator({ origin: ORIGIN }).register(late);
    expect(await outcome(passkeys.verifyRegistration({ accountId: a.id, response: lateResponse }))).toBe('IDENTITY_PASSKEY_CHALLENGE_INVALID');

    expect(await outcome(passkeys.verifyRegistration({ accountId: a.id, response: { id: 'x' } }))).toBe('IDENTITY_PASSKEY_INVALID');
    expect(await passkeys.list(a.id)).toHaveLength(0);
  });
});

describe('passkey authentication', () => {
  it('works as a second factor for the account it was asked for', async () => {
    const { account, authenticator } = await registered();
    const options = await passkeys.authenticationOptions({ accountId: account.id });
    expect(options.allowCredentials?.map((c) => c.id)).toEqual([authenticator.credentialId]);
    const result = await passkeys.verifyAuthentication({ accountId: account.id, response: authenticator.authenticate(options) });
    expect(result).toEqual({ accountId: account.id, credentialId: authenticator.credentialId, userVerified: true });
    expect((await passkeys.list(account.id))[0]?.last_used_at).toBe(f.clock.now().toISOString());
  });

  it('works passwordless with a discoverable credential, and then requires user verification', async () => {
    const { account, authenticator } = await registered();
    const options = await passkeys.authenticationOptions();
    expect(options.allowCredentials).toBeUndefined();
    expect(options.userVerification).toBe('required');
    expect((await passkeys.verifyAuthentication({ response: authenticator.authenticate(options) })).accountId).toBe(account.id);

    const presenceOnly = await registered({ userVerification: false });
    const again = await passkeys.authenticationOptions();
    expect(await outcome(passkeys.verifyAuthentication({ response: presenceOnly.authenticator.authenticate(again) }))).toBe(
      'IDENTITY_PASSKEY_INVALID',
    );
  });

  it('refuses a replayed response and a challenge that was never issued', async () => {
    const { account, authenticator } = await registered();
    const options = await passkeys.authenticationOptions({ accountId: account.id });
    const response = authenticator.authenticate(options);
    expect(await outcome(passkeys.verifyAuthentication({ accountId: account.id, response }))).toBe('ok');
    expect(await outcome(passkeys.verifyAuthentication({ accountId: account.id, response }))).toBe('IDENTITY_PASSKEY_CHALLENGE_INVALID');
    const forged = authenticator.authenticate(options, { challenge: Buffer.alloc(32, 7).toString('base64url') });
    expect(await outcome(passkeys.verifyAuthentication({ accountId: account.id, response: forged }))).toBe('IDENTITY_PASSKEY_CHALLENGE_INVALID');
  });

  it('lets exactly one of ten concurrent uses of one response through', async () => {
    const { account, authenticator } = await registered();
    const response = authenticator.authenticate(await passkeys.authenticationOptions({ accountId: account.id }));
    const results = await Promise.all(Array.from({ length: 10 }, () => outcome(passkeys.verifyAuthentication({ accountId: account.id, response }))));
    expect(results.filter((r) => r === 'ok')).toHaveLength(1);
    expect(results.filter((r) => r === 'IDENTITY_PASSKEY_CHALLENGE_INVALID')).toHaveLength(9);
  });

  it('refuses a wrong origin or relying party, and burns the challenge', async () => {
    const { account, authenticator } = await registered();
    const options = await passkeys.authenticationOptions({ accountId: account.id });
    const phished = authenticator.authenticate(options, { origin: 'https://shop.example.evil.test' });
    expect(await outcome(passkeys.verifyAuthentication({ accountId: account.id, response: phished }))).toBe('IDENTITY_PASSKEY_INVALID');
    expect(await outcome(passkeys.verifyAuthentication({ accountId: account.id, response: authenticator.authenticate(options) }))).toBe(
      'IDENTITY_PASSKEY_CHALLENGE_INVALID',
    );
    const other = await passkeys.authenticationOptions({ accountId: account.id });
    const wrongRp = authenticator.authenticate(other, { rpId: 'evil.example' });
    expect(await outcome(passkeys.verifyAuthentication({ accountId: account.id, response: wrongRp }))).toBe('IDENTITY_PASSKEY_INVALID');
  });

  it('refuses a tampered signature and a credential of another account', async () => {
    const a = await registered();
    const b = await registered();
    const options = await passkeys.authenticationOptions({ accountId: a.account.id });
    const response = a.authenticator.authenticate(options);
    const sig = Buffer.from(response.response.signature, 'base64url');
    sig[sig.length - 1] = (sig[sig.length - 1] ?? 0) ^ 1;
    const tampered = { ...response, response: { ...response.response, signature: sig.toString('base64url') } };
    expect(await outcome(passkeys.verifyAuthentication({ accountId: a.account.id, response: tampered }))).toBe('IDENTITY_PASSKEY_INVALID');
    const forB = await passkeys.authenticationOptions({ accountId: b.account.id });
    expect(await outcome(passkeys.verifyAuthentication({ accountId: b.account.id, response: a.authenticator.authenticate(forB) }))).toBe(
      'IDENTITY_PASSKEY_INVALID',
    );
  });

  it('refuses a counter that does not move forward (cloned authenticator), accepts counter-less ones', async () => {
    const { account, authenticator } = await registered();
    const sign = async (counter?: number) => {
      const options = await passkeys.authenticationOptions({ accountId: account.id });
      const response = authenticator.authenticate(options, counter === undefined ? {} : { counter });
      return outcome(passkeys.verifyAuthentication({ accountId: account.id, response }));
    };
    expect(await sign(5)).toBe('ok');
    expect(await sign(5)).toBe('IDENTITY_PASSKEY_COUNTER_REGRESSED');
    expect(await sign(3)).toBe('IDENTITY_PASSKEY_COUNTER_REGRESSED');
    expect(await sign(6)).toBe('ok');

    const counterless = await registered({ counterStep: 0 });
    for (let i = 0; i < 3; i++) {
      const options = await passkeys.authenticationOptions({ accountId: counterless.account.id });
      const result = passkeys.verifyAuthentication({ accountId: counterless.account.id, response: counterless.authenticator.authenticate(options) });
      expect(await outcome(result)).toBe('ok');
    }
  });

  it('removes a passkey of the account only', async () => {
    const { account, authenticator } = await registered();
    const other: AccountInfo = await f.account();
    expect(await outcome(passkeys.remove(other.id, authenticator.credentialId))).toBe('IDENTITY_PASSKEY_NOT_FOUND');
    await passkeys.remove(account.id, authenticator.credentialId);
    expect(await passkeys.list(account.id)).toEqual([]);
    const options = await passkeys.authenticationOptions();
    expect(await outcome(passkeys.verifyAuthentication({ response: authenticator.authenticate(options) }))).toBe('IDENTITY_PASSKEY_INVALID');
  });
});
