import type { PublicKeyCredentialCreationOptionsJSON, PublicKeyCredentialRequestOptionsJSON } from '@simplewebauthn/server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { softwareAuthenticator } from '../../src/modules/identity/test-support/software-authenticator.ts';
import { authApp, browser, codeOf, CookieJar, CUSTOMER_COOKIE, customer, PUBLIC, signIn, type AuthTest } from './helpers.ts';

/**
 * Passkeys over HTTP with a software authenticator that signs for real: registration behind a
 * step-up, passwordless sign-in (user verification required), passkey as the second factor after
 * a password, and passkeys refused from another origin or replayed.
 */
let t: AuthTest;
beforeAll(async () => {
  t = await authApp();
});
afterAll(async () => t.close());

async function withPasskey(options: { userVerification?: boolean } = {}) {
  const email = await customer(t);
  const { jar } = await signIn(t, email);
  const authenticator = softwareAuthenticator({ origin: PUBLIC, userVerification: options.userVerification ?? true });
  const creation = await browser(t, jar, 'POST', '/v1/auth/passkeys/registration/options');
  expect(creation.statusCode).toBe(200);
  const before = jar.get(CUSTOMER_COOKIE);
  const registered = await browser(t, jar, 'POST', '/v1/auth/passkeys/registration', {
    response: authenticator.register(creation.json<PublicKeyCredentialCreationOptionsJSON>()),
    name: 'Laptop',
  });
  expect(registered.statusCode).toBe(200);
  expect(registered.json()).toMatchObject({ passkey: { name: 'Laptop' }, session: { mfa_verified_at: expect.any(String) } });
  expect(jar.get(CUSTOMER_COOKIE)).not.toBe(before);
  return { email, jar, authenticator };
}

const options = async (jar: CookieJar, body: Record<string, unknown>) =>
  (await browser(t, jar, 'POST', '/v1/auth/passkeys/authentication/options', body)).json<PublicKeyCredentialRequestOptionsJSON>();

describe('passkeys', () => {
  it('signs in with a passkey alone, as a verified second factor', async () => {
    const { email, authenticator } = await withPasskey();
    const jar = new CookieJar();
    const res = await browser(t, jar, 'POST', '/v1/auth/passkeys/signin', { response: authenticator.authenticate(await options(jar, { use: 'signin' })) });
    expect(res.statusCode).toBe(200);
    expect(res.json<{ session: { mfa_verified_at: string | null } }>().session.mfa_verified_at).not.toBeNull();
    expect((await browser(t, jar, 'GET', '/v1/me')).json()).toMatchObject({ email });
  });

  it('refuses passwordless sign-in without user verification, from another origin, and a replay', async () => {
    const weak = await withPasskey({ userVerification: false });
    const jar = new CookieJar();
    const noUv = await browser(t, jar, 'POST', '/v1/auth/passkeys/signin', { response: weak.authenticator.authenticate(await options(jar, { use: 'signin' })) });
    expect(noUv.statusCode).toBe(401);
    expect(codeOf(noUv)).toBe('IDENTITY_PASSKEY_INVALID');

    const { authenticator } = await withPasskey();
    const phished = await browser(t, jar, 'POST', '/v1/auth/passkeys/signin', {
      response: authenticator.authenticate(await options(jar, { use: 'signin' }), { origin: 'https://shop-example.evil.example' }),
    });
    expect(phished.statusCode).toBe(401);
    const answer = authenticator.authenticate(await options(jar, { use: 'signin' }));
    expect((await browser(t, new CookieJar(), 'POST', '/v1/auth/passkeys/signin', { response: answer })).statusCode).toBe(200);
    const replay = await browser(t, new CookieJar(), 'POST', '/v1/auth/passkeys/signin', { response: answer });
    expect(replay.statusCode).toBe(400);
    expect(codeOf(replay)).toBe('IDENTITY_PASSKEY_CHALLENGE_INVALID');
  });

  it('asks for the passkey after the password, and completes the sign-in with it', async () => {
    const { email, authenticator } = await withPasskey();
    const { res, jar } = await signIn(t, email);
    expect(res.json()).toMatchObject({ mfa_required: true, methods: ['passkey'] });
    expect(jar.get(CUSTOMER_COOKIE)).toBeUndefined();
    const challenge = await options(jar, { use: 'mfa' });
    expect(challenge.allowCredentials).toHaveLength(1);
    const done = await browser(t, jar, 'POST', '/v1/auth/signin/mfa', { passkey: authenticator.authenticate(challenge) });
    expect(done.statusCode).toBe(200);
    expect((await browser(t, jar, 'GET', '/v1/me')).statusCode).toBe(200);
  });

  it("refuses another account's passkey as the second factor", async () => {
    const victim = await withPasskey();
    const attacker = await withPasskey();
    const { jar } = await signIn(t, victim.email);
    const challenge = await options(jar, { use: 'mfa' });
    const res = await browser(t, jar, 'POST', '/v1/auth/signin/mfa', { passkey: attacker.authenticator.authenticate(challenge) });
    expect(res.statusCode).toBe(401);
    expect(jar.get(CUSTOMER_COOKIE)).toBeUndefined();
  });

  it('steps up with a passkey, lists and removes passkeys', async () => {
    const { jar, authenticator } = await withPasskey();
    t.clock.advance(11 * 60_000);
    expect(codeOf(await browser(t, jar, 'POST', '/v1/auth/passkeys/registration/options'))).toBe('IDENTITY_REAUTH_REQUIRED');
    const up = await browser(t, jar, 'POST', '/v1/auth/step-up', { passkey: authenticator.authenticate(await options(jar, { use: 'step-up' })) });
    expect(up.statusCode).toBe(200);
    const list = (await browser(t, jar, 'GET', '/v1/auth/passkeys')).json<{ data: { id: string }[] }>().data;
    expect(list).toHaveLength(1);
    expect((await browser(t, jar, 'DELETE', `/v1/auth/passkeys/${list[0]!.id}`)).statusCode).toBe(204);
    expect((await browser(t, jar, 'GET', '/v1/auth/session')).json()).toMatchObject({ account: { second_factors: [] } });
  });
});
