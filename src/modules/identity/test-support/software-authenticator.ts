import { createHash, generateKeyPairSync, randomBytes, sign, type KeyObject } from 'node:crypto';
import { isoCBOR } from '@simplewebauthn/server/helpers';
import type {
  AuthenticationResponseJSON,
  PublicKeyCredentialCreationOptionsJSON,
  PublicKeyCredentialRequestOptionsJSON,
  RegistrationResponseJSON,
} from '@simplewebauthn/server';

/**
 * A WebAuthn authenticator in software, for tests: an ES256 (P-256) key pair from node:crypto,
 * 'none' attestation, and the byte layouts of W3C WebAuthn Level 3 §6.1 (authenticator data) and
 * §6.5 (attestation object), so the server side is tested against real signatures, not a stub.
 * Overrides let a test play the attacker: another origin, a replayed or forged challenge, a
 * counter that goes backwards (a cloned authenticator).
 */
const b64 = (b: Uint8Array | Buffer) => Buffer.from(b).toString('base64url');
const sha256 = (b: Uint8Array | string) => createHash('sha256').update(b).digest();

const FLAG_UP = 0x01;
const FLAG_UV = 0x04;
const FLAG_AT = 0x40;

export interface SoftwareAuthenticatorOptions {
  origin: string;
  /** Counter step per signature; 0 makes a counter-less authenticator. */
  counterStep?: number;
  userVerification?: boolean;
}

export interface Overrides {
  origin?: string;
  challenge?: string;
  counter?: number;
  type?: string;
  rpId?: string;
}

export function softwareAuthenticator(options: SoftwareAuthenticatorOptions) {
  const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
  const credentialId = randomBytes(16);
  const step = options.counterStep ?? 1;
  let counter = 0;
  let userHandle: string | undefined;

  const flags = (extra: number) => FLAG_UP | (options.userVerification === false ? 0 : FLAG_UV) | extra;

  function clientData(type: string, challenge: string, origin: string): Buffer {
    return Buffer.from(JSON.stringify({ type, challenge, origin, crossOrigin: false }), 'utf8');
  }

  function coseKey(key: KeyObject): Uint8Array {
    const jwk = key.export({ format: 'jwk' });
    return isoCBOR.encode(
      new Map<number, number | Uint8Array>([
        [1, 2], // kty: EC2
        [3, -7], // alg: ES256
        [-1, 1], // crv: P-256
        [-2, new Uint8Array(Buffer.from(jwk.x ?? '', 'base64url'))],
        [-3, new Uint8Array(Buffer.from(jwk.y ?? '', 'base64url'))],
      ]),
    );
  }

  function authData(rpId: string, flagByte: number, count: number, attested?: Uint8Array): Buffer {
    const c = Buffer.alloc(4);
    c.writeUInt32BE(count);
    return Buffer.concat([sha256(rpId), Buffer.from([flagByte]), c, ...(attested === undefined ? [] : [Buffer.from(attested)])]);
  }

  return {
    credentialId: b64(credentialId),
    get userHandle() {
      return userHandle;
    },

    register(opts: PublicKeyCredentialCreationOptionsJSON, o: Overrides = {}): RegistrationResponseJSON {
      userHandle = opts.user.id;
      const rpId = o.rpId ?? opts.rp.id ?? '';
      const idLength = Buffer.alloc(2);
      idLength.writeUInt16BE(credentialId.length);
      const attested = Buffer.concat([Buffer.alloc(16), idLength, credentialId, Buffer.from(coseKey(publicKey))]);
      const data = authData(rpId, flags(FLAG_AT), counter, attested);
      const attestationObject = isoCBOR.encode(
        new Map<string, string | Uint8Array | Map<string, never>>([
          ['fmt', 'none'],
          ['attStmt', new Map<string, never>()],
          ['authData', new Uint8Array(data)],
        ]),
      );
      return {
        id: b64(credentialId),
        rawId: b64(credentialId),
        type: 'public-key',
        response: {
          clientDataJSON: b64(clientData(o.type ?? 'webauthn.create', o.challenge ?? opts.challenge, o.origin ?? options.origin)),
          attestationObject: b64(attestationObject),
          transports: ['internal'],
        },
        authenticatorAttachment: 'platform',
        clientExtensionResults: {},
      };
    },

    authenticate(opts: PublicKeyCredentialRequestOptionsJSON, o: Overrides = {}): AuthenticationResponseJSON {
      counter = o.counter ?? counter + step;
      const data = authData(o.rpId ?? opts.rpId ?? '', flags(0), counter);
      const cd = clientData(o.type ?? 'webauthn.get', o.challenge ?? opts.challenge, o.origin ?? options.origin);
      const signature = sign('sha256', Buffer.concat([data, sha256(cd)]), privateKey);
      return {
        id: b64(credentialId),
        rawId: b64(credentialId),
        type: 'public-key',
        response: {
          clientDataJSON: b64(cd),
          authenticatorData: b64(data),
          signature: b64(signature),
          ...(userHandle === undefined ? {} : { userHandle }),
        },
        authenticatorAttachment: 'platform',
        clientExtensionResults: {},
      };
    },
  };
}
