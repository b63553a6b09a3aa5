import { randomBytes } from 'node:crypto';
import {
  generateAuthenticationOptions,
  generateRegistrationOptions,
  verifyAuthenticationResponse,
  verifyRegistrationResponse,
  type AuthenticationResponseJSON,
  type PublicKeyCredentialCreationOptionsJSON,
  type PublicKeyCredentialRequestOptionsJSON,
  type RegistrationResponseJSON,
} from '@simplewebauthn/server';
import type { Kysely } from 'kysely';
import { z } from 'zod';
import type { Clock } from '../../../kernel/clock.ts';
import { fail } from '../../../kernel/errors.ts';
import type { Database } from '../../../store/schema.ts';
import { IdentityErrors } from '../errors.ts';
import { AuthenticationResponse, challengeOf, RegistrationResponse } from './passkey-schema.ts';
import { createChallengeStore } from './webauthn-challenges.ts';

/**
 * Passkeys (W3C WebAuthn Level 3 via @simplewebauthn/server), as a second factor after a password
 * or alone (discoverable credentials, passwordless). Phishing-resistant by construction: the origin
 * and relying-party id are checked (NIST SP 800-63B §3.2.5, ASVS 6.6.x). Challenges live on the
 * server, single use, 5 minutes by default. The signature counter must move forward, checked again
 * in the UPDATE that stores it, so a cloned authenticator or a replay is refused
 * (WebAuthn §7.2 step 21). Passwordless sign-in requires user verification (PIN or biometrics),
 * which makes the passkey a multi-factor authenticator on its own.
 */
export interface PasskeyInfo {
  readonly credential_id: string;
  readonly name: string | null;
  readonly transports: readonly string[];
  readonly device_type: string;
  readonly backed_up: boolean;
  readonly created_at: string;
  readonly last_used_at: string | null;
}

export interface PasskeyService {
  registrationOptions(input: { accountId: string; userName: string; userDisplayName?: string }): Promise<PublicKeyCredentialCreationOptionsJSON>;
  /** `response` is the browser's JSON as received; it is validated here. */
  verifyRegistration(input: { accountId: string; response: unknown; name?: string }): Promise<PasskeyInfo>;
  /** With `accountId`: second factor for that account. Without: passwordless, any discoverable passkey. */
  authenticationOptions(input?: { accountId?: string }): Promise<PublicKeyCredentialRequestOptionsJSON>;
  verifyAuthentication(input: { response: unknown; accountId?: string }): Promise<{ accountId: string; credentialId: string; userVerified: boolean }>;
  list(accountId: string): Promise<PasskeyInfo[]>;
  remove(accountId: string, credentialId: string): Promise<void>;
}

export const PasskeyConfigSchema = z.object({
  rpId: z.string().min(1),
  rpName: z.string().min(1),
  origins: z.array(z.url()).min(1),
  challengeTtlMs: z.number().int().min(10_000).max(600_000).default(300_000),
});
export type PasskeyConfig = z.input<typeof PasskeyConfigSchema>;

/** EdDSA, ES256, RS256: what authenticators in use today sign with. */
const ALGORITHMS = [-8, -7, -257];

type Row = Database['identity_passkeys'];
const toInfo = (r: Row): PasskeyInfo => ({
  credential_id: r.credential_id,
  name: r.name,
  transports: JSON.parse(r.transports) as string[],
  device_type: r.device_type,
  backed_up: r.backed_up === 1,
  created_at: r.created_at,
  last_used_at: r.last_used_at,
});

export function createPasskeyService(deps: { db: Kysely<Database>; clock: Clock; rp: PasskeyConfig }): PasskeyService {
  const { db, clock } = deps;
  const rp = PasskeyConfigSchema.parse(deps.rp);
  const challenges = createChallengeStore({ db, clock, ttlMs: rp.challengeTtlMs });
  const invalid = (why: string): never => fail(IdentityErrors.IDENTITY_PASSKEY_INVALID, `the passkey response did not verify: ${why}`);
  const badChallenge = (): never =>
    fail(IdentityErrors.IDENTITY_PASSKEY_CHALLENGE_INVALID, 'the passkey response answers no pending challenge');

  const credentialsOf = (accountId: string) =>
    db.selectFrom('identity_passkeys').selectAll().where('account_id', '=', accountId).orderBy('created_at').execute();

  async function account(accountId: string) {
    const row = await db.selectFrom('identity_accounts').select(['id', 'user_handle']).where('id', '=', accountId).executeTakeFirst();
    if (row === undefined) fail(IdentityErrors.IDENTITY_ACCOUNT_NOT_FOUND, 'no account with that id');
    return row;
  }

  return {
    async registrationOptions({ accountId, userName, userDisplayName }) {
      const { user_handle } = await account(accountId);
      const existing = await credentialsOf(accountId);
      const options = await generateRegistrationOptions({
        rpName: rp.rpName,
        rpID: rp.rpId,
        userName,
        userDisplayName: userDisplayName ?? userName,
        userID: new Uint8Array(Buffer.from(user_handle, 'base64url')),
        challenge: new Uint8Array(randomBytes(32)),
        timeout: rp.challengeTtlMs,
        attestationType: 'none',
        excludeCredentials: existing.map((c) => ({ id: c.credential_id, transports: JSON.parse(c.transports) as string[] })),
        authenticatorSelection: { residentKey: 'required', userVerification: 'preferred' },
        supportedAlgorithmIDs: ALGORITHMS,
      });
      await challenges.put(options.challenge, 'registration', accountId);
      return options;
    },

    async verifyRegistration({ accountId, response, name }) {
      const parsed = RegistrationResponse.safeParse(response);
      if (!parsed.success) return invalid('malformed response');
      const challenge = challengeOf(parsed.data.response.clientDataJSON) ?? badChallenge();
      const pending = await challenges.take(challenge, 'registration');
      if (pending === undefined || pending.accountId !== accountId) return badChallenge();
      const verification = await verifyRegistrationResponse({
        response: parsed.data as RegistrationResponseJSON,
        expectedChallenge: challenge,
        expectedOrigin: rp.origins,
        expectedRPID: rp.rpId,
        requireUserVerification: false,
        supportedAlgorithmIDs: ALGORITHMS,
      }).catch(() => invalid('attestation, origin, relying party or flags'));
      if (!verification.verified) return invalid('attestation');
      const info = verification.registrationInfo;
      const at = clock.now().toISOString();
      const row: Row = {
        credential_id: info.credential.id,
        account_id: accountId,
        public_key: Buffer.from(info.credential.publicKey).toString('base64url'),
        counter: info.credential.counter,
        transports: JSON.stringify(parsed.data.response.transports ?? []),
        device_type: info.credentialDeviceType,
        backed_up: info.credentialBackedUp ? 1 : 0,
        name: name ?? null,
        created_at: at,
        last_used_at: null,
      };
      try {
        await db.insertInto('identity_passkeys').values(row).execute();
      } catch {
        invalid('credential already registered');
      }
      return toInfo(row);
    },

    async authenticationOptions(input = {}) {
      const allow = input.accountId === undefined ? undefined : await credentialsOf((await account(input.accountId)).id);
      const options = await generateAuthenticationOptions({
        rpID: rp.rpId,
        challenge: new Uint8Array(randomBytes(32)),
        timeout: rp.challengeTtlMs,
        userVerification: allow === undefined ? 'required' : 'preferred',
        ...(allow === undefined ? {} : { allowCredentials: allow.map((c) => ({ id: c.credential_id, transports: JSON.parse(c.transports) as string[] })) }),
      });
      await challenges.put(options.challenge, 'authentication', input.accountId ?? null);
      return options;
    },

    async verifyAuthentication({ response, accountId }) {
      const parsed = AuthenticationResponse.safeParse(response);
      if (!parsed.success) return invalid('malformed response');
      const challenge = challengeOf(parsed.data.response.clientDataJSON) ?? badChallenge();
      const pending = await challenges.take(challenge, 'authentication');
      if (pending === undefined) return badChallenge();
      const expectedAccount = pending.accountId ?? accountId;
      if (accountId !== undefined && pending.accountId !== null && pending.accountId !== accountId) return badChallenge();
      const stored = await db
        .selectFrom('identity_passkeys')
        .innerJoin('identity_accounts', 'identity_accounts.id', 'identity_passkeys.account_id')
        .selectAll('identity_passkeys')
        .select('identity_accounts.user_handle')
        .where('identity_passkeys.credential_id', '=', parsed.data.id)
        .executeTakeFirst();
      if (stored === undefined) return invalid('unknown credential');
      if (expectedAccount !== undefined && stored.account_id !== expectedAccount) return invalid('credential of another account');
      const handle = parsed.data.response.userHandle;
      if (handle !== undefined && handle !== stored.user_handle) return invalid('user handle does not match');
      const passwordless = pending.accountId === null;
      const verification = await verifyAuthenticationResponse({
        response: parsed.data as AuthenticationResponseJSON,
        expectedChallenge: challenge,
        expectedOrigin: rp.origins,
        expectedRPID: rp.rpId,
        credential: {
          id: stored.credential_id,
          publicKey: new Uint8Array(Buffer.from(stored.public_key, 'base64url')),
          counter: stored.counter,
          transports: JSON.parse(stored.transports) as string[],
        },
        requireUserVerification: passwordless,
      }).catch((error: unknown) => {
        if (error instanceof Error && /counter/i.test(error.message))
          fail(IdentityErrors.IDENTITY_PASSKEY_COUNTER_REGRESSED, 'the passkey signature counter did not advance');
        return invalid('signature, origin, relying party or flags');
      });
      if (!verification.verified) return invalid('signature');
      const { newCounter, userVerified } = verification.authenticationInfo;
      const updated = await db
        .updateTable('identity_passkeys')
        .set({ counter: newCounter, last_used_at: clock.now().toISOString() })
        .where('credential_id', '=', stored.credential_id)
        // Authenticators without a counter always say 0; any other must say more than last time.
        .where('counter', newCounter === 0 ? '=' : '<', newCounter)
        .executeTakeFirst();
      if (Number(updated.numUpdatedRows) !== 1)
        fail(IdentityErrors.IDENTITY_PASSKEY_COUNTER_REGRESSED, 'the passkey signature counter did not advance');
      return { accountId: stored.account_id, credentialId: stored.credential_id, userVerified };
    },

    list: async (accountId) => (await credentialsOf(accountId)).map(toInfo),

    async remove(accountId, credentialId) {
      const result = await db
        .deleteFrom('identity_passkeys')
        .where('account_id', '=', accountId)
        .where('credential_id', '=', credentialId)
        .executeTakeFirst();
      if (Number(result.numDeletedRows) !== 1) fail(IdentityErrors.IDENTITY_PASSKEY_NOT_FOUND, 'the account has no passkey with that id');
    },
  };
}
