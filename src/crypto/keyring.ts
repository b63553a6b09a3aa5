import { createPrivateKey, createPublicKey, createSecretKey, hkdfSync, randomBytes, createHash, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Secret } from '../kernel/secret.ts';

/**
 * The root of the key hierarchy (DESIGN.md "Keys"). The root key comes from a key provider: the
 * environment (CUSTOS_ROOT_KEY) or a local keyring file created on first start with mode 0600.
 * Every other long-lived key is derived from it with HKDF-SHA256 under its own label, so one
 * secret backs up the whole service and no two roles ever share a key.
 */
export interface RootKeys {
  /** Wraps key-encryption keys. */
  readonly kekWrap: KeyObject;
  /** Blind indexes (HMAC-SHA256) of searchable fields. */
  readonly blindIndex: KeyObject;
  /** Keyed hashes of API key secrets. */
  readonly apiKeyHash: KeyObject;
  /** Per-entry MACs of the audit log. */
  readonly auditMac: KeyObject;
  /** Ed25519 key that signs audit checkpoints. */
  readonly auditSigning: { readonly privateKey: KeyObject; readonly publicKey: KeyObject; readonly keyId: string };
}

export const KEYRING_FILE = 'keyring.json';

/** A provider hands out the 32-byte root key; an external KMS can stand behind the same shape. */
export interface KeyProvider {
  readonly name: string;
  rootKey(): Secret<Buffer>;
}

export function envKeyProvider(key: Secret<Buffer>): KeyProvider {
  if (key.reveal().length !== 32) throw new Error('CUSTOS_ROOT_KEY must decode to 32 bytes');
  return { name: 'environment', rootKey: () => key };
}

/** The local keyring file: created on first use with mode 0600; refused if others can read it. */
export function fileKeyProvider(dataDir: string): KeyProvider {
  const file = join(dataDir, KEYRING_FILE);
  return {
    name: `keyring file ${file}`,
    rootKey() {
      if (!existsSync(file)) {
        mkdirSync(dataDir, { recursive: true, mode: 0o700 });
        const body = { version: 1, root_key: randomBytes(32).toString('base64'), created_at: new Date().toISOString() };
        try {
          writeFileSync(file, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
        } catch (error) {
          // Another process created it first: use theirs.
          if ((error as { code?: string }).code !== 'EEXIST') throw error;
        }
      }
      const mode = statSync(file).mode & 0o777;
      if ((mode & 0o077) !== 0) {
        throw new Error(`the keyring file ${file} is readable by others (mode ${mode.toString(8)}); run chmod 600 on it`);
      }
      chmodSync(file, 0o600);
      const parsed = JSON.parse(readFileSync(file, 'utf8')) as { root_key?: unknown };
      if (typeof parsed.root_key !== 'string') throw new Error(`the keyring file ${file} has no root_key`);
      const key = Buffer.from(parsed.root_key, 'base64');
      if (key.length !== 32) throw new Error(`the keyring file ${file} holds a root key that is not 32 bytes`);
      return new Secret(key);
    },
  };
}

function derive(root: Buffer, label: string): Buffer {
  return Buffer.from(hkdfSync('sha256', root, Buffer.alloc(0), `custos/${label}`, 32));
}

/** PKCS#8 prefix of an Ed25519 private key; the 32-byte seed follows it. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

export function deriveRootKeys(provider: KeyProvider): RootKeys {
  const root = provider.rootKey().reveal();
  const seed = derive(root, 'audit-signing/v1');
  const privateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const publicKey = createPublicKey(privateKey);
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  return {
    kekWrap: createSecretKey(derive(root, 'kek-wrap/v1')),
    blindIndex: createSecretKey(derive(root, 'blind-index/v1')),
    apiKeyHash: createSecretKey(derive(root, 'api-key-hash/v1')),
    auditMac: createSecretKey(derive(root, 'audit-mac/v1')),
    auditSigning: { privateKey, publicKey, keyId: createHash('sha256').update(spki).digest('hex').slice(0, 16) },
  };
}
