import { createHmac, createPrivateKey, createPublicKey, createSecretKey, hkdfSync, randomBytes, createHash, type KeyObject } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Secret } from '../kernel/secret.ts';
import { open, seal } from './aead.ts';

/**
 * The root of the key hierarchy (DESIGN.md "Keys"). The root key comes from a key provider: the
 * environment (CUSTOS_ROOT_KEY), a mounted secret file (CUSTOS_ROOT_KEY_FILE), a PKCS#11 HSM
 * (src/crypto/pkcs11.ts), or a local keyring file beside the data (the embedded default). The root
 * only wraps: the KEKs and the service's own keys (blind index, API-key hash, audit MAC and
 * signing, the identity and staff base keys) are random keys of their own, versioned, stored
 * wrapped by it (src/crypto/service-keys.ts). A database made before those were stored keeps, as
 * their first versions, the values once derived from the root with HKDF-SHA256 (`deriveRootKeys`).
 */
export interface RootKeys {
  /** Wraps key-encryption keys (only on a key set derived from a software root). */
  readonly kekWrap?: KeyObject;
  /** Blind indexes (HMAC-SHA256) of searchable fields. */
  readonly blindIndex: KeyObject;
  /** Keyed hashes of API key secrets. */
  readonly apiKeyHash: KeyObject;
  /** Per-entry MACs of the audit log (the current version). */
  readonly auditMac: KeyObject;
  /** Older audit MAC versions, newest first: they verify the entries written under them. */
  readonly auditMacPrevious?: readonly KeyObject[];
  /** The version of `auditMac` (stored service keys only; see src/crypto/service-keys.ts). */
  readonly auditMacVersion?: number;
  /** Ed25519 key that signs audit checkpoints (the current version). */
  readonly auditSigning: AuditSigner;
  /** Older signing keys: checkpoints name the key that signed them. */
  readonly auditSigningPrevious?: readonly Pick<AuditSigner, 'publicKey' | 'keyId'>[];
}
export interface AuditSigner {
  readonly privateKey: KeyObject;
  readonly publicKey: KeyObject;
  readonly keyId: string;
}
/** What the audit log needs of the key set. */
export type AuditKeys = Pick<RootKeys, 'auditMac' | 'auditMacPrevious' | 'auditMacVersion' | 'auditSigning' | 'auditSigningPrevious'>;

export const KEYRING_FILE = 'keyring.json';

/**
 * A root key as the key store uses it: it wraps and unwraps key material (AES-256-GCM with
 * associated data), and is named by `kid`, which every wrapped row records, so that a rotation
 * knows what is left to re-wrap and a process knows which root opens a row.
 */
export interface RootKey {
  readonly kid: string;
  wrap(raw: Buffer, aad: string): string;
  unwrap(wrapped: string, aad: string): Buffer | undefined;
  /** A software root only: the HKDF-SHA256 value under `custos/<label>` (the keys of a database made before service keys were stored). */
  derive?(label: string): Buffer;
}

/** The roots a process can use: the current one wraps; previous ones only unwrap, during a root rotation. */
export interface RootRing {
  /** Where the root comes from, for messages. */
  readonly name: string;
  /** The setting to name when the root is wrong or missing. */
  readonly variable: string;
  current(): RootKey;
  /** Older roots the provider still presents (during a root rotation). */
  previous(): RootKey[];
  byKid(kid: string): RootKey | undefined;
  /** Reads the provider again (a keyring file another process rotated). */
  reload(): void;
  /** The embedded keyring only: a new root becomes current, the old one is kept as previous. */
  rotate?(): void;
  /** The embedded keyring only: forgets the previous roots once nothing is wrapped by them. */
  settle?(): void;
}

/**
 * The root that wrapped a row (named by its kid): read the provider again once on a miss (another
 * process rotated the keyring file); a root this process cannot get is an error naming the setting.
 */
export function rootByKid(ring: RootRing, kid: string, what: string): RootKey {
  let root = ring.byKid(kid);
  if (root === undefined) {
    ring.reload();
    root = ring.byKid(kid);
  }
  if (root === undefined) {
    throw new RootKeyMissing(`${what} is wrapped by a root key this process does not hold (${ring.name}); check ${ring.variable}, or during a root rotation set the previous root too`);
  }
  return root;
}

export class RootKeyMissing extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RootKeyMissing';
  }
}

function hkdf(root: Buffer, label: string): Buffer {
  return Buffer.from(hkdfSync('sha256', root, Buffer.alloc(0), `custos/${label}`, 32));
}

/** A root held by this process: it wraps under the HKDF-SHA256 `kek-wrap/v1` key of the 32 root bytes. */
export function softwareRoot(root: Buffer): RootKey {
  return { ...rootFromWrapKey(createSecretKey(hkdf(root, 'kek-wrap/v1'))), derive: (label) => hkdf(root, label) };
}

/** A root given only by its wrapping key (tests that hold a `kekWrap`). */
export function rootFromWrapKey(wrapKey: KeyObject): RootKey {
  const kid = createHmac('sha256', wrapKey).update('custos/root-id').digest('hex').slice(0, 16);
  return {
    kid,
    wrap: (raw, aad) => seal(wrapKey, raw, aad).toString('base64url'),
    unwrap: (wrapped, aad) => open(wrapKey, Buffer.from(wrapped, 'base64url'), aad),
  };
}

function ringOf(name: string, variable: string, load: () => { current: Buffer; previous: Buffer[] }, extra: Pick<RootRing, 'rotate' | 'settle'> = {}): RootRing {
  let current!: RootKey;
  let all = new Map<string, RootKey>();
  const reload = () => {
    const keys = load();
    current = softwareRoot(keys.current);
    all = new Map([current, ...keys.previous.map(softwareRoot)].map((r) => [r.kid, r]));
  };
  reload();
  return {
    name,
    variable,
    current: () => current,
    previous: () => [...all.values()].filter((r) => r.kid !== current.kid),
    byKid: (kid) => all.get(kid),
    reload,
    ...extra,
  };
}

function check32(key: Buffer, variable: string): Buffer {
  if (key.length !== 32) throw new Error(`${variable} must decode to 32 bytes`);
  return key;
}

/** CUSTOS_ROOT_KEY, and during a root rotation the old root in CUSTOS_ROOT_KEY_PREVIOUS. */
export function envRootRing(key: Secret<Buffer>, previous?: Secret<Buffer>): RootRing {
  return ringOf('environment', 'CUSTOS_ROOT_KEY', () => ({
    current: check32(key.reveal(), 'CUSTOS_ROOT_KEY'),
    previous: previous === undefined ? [] : [check32(previous.reveal(), 'CUSTOS_ROOT_KEY_PREVIOUS')],
  }));
}

/** Reads a root key file: 32 bytes in base64 (surrounding white space ignored). */
export function readRootKeyFile(file: string, variable: string): Buffer {
  let text: string;
  try {
    text = readFileSync(file, 'utf8').trim();
  } catch (error) {
    throw new Error(`${variable}: cannot read ${file} (${(error as { code?: string }).code ?? 'error'})`);
  }
  if (!/^[A-Za-z0-9+/_-]{43}=?$/.test(text)) throw new Error(`${variable}: ${file} must hold 32 bytes in base64 (openssl rand -base64 32)`);
  return check32(Buffer.from(text, text.includes('-') || text.includes('_') ? 'base64url' : 'base64'), variable);
}

/** CUSTOS_ROOT_KEY_FILE (a systemd credential or a Kubernetes secret mount), and CUSTOS_ROOT_KEY_PREVIOUS_FILE during a rotation. */
export function fileRootRing(file: string, previousFile?: string): RootRing {
  return ringOf(`root key file ${file}`, 'CUSTOS_ROOT_KEY_FILE', () => ({
    current: readRootKeyFile(file, 'CUSTOS_ROOT_KEY_FILE'),
    previous: previousFile === undefined ? [] : [readRootKeyFile(previousFile, 'CUSTOS_ROOT_KEY_PREVIOUS_FILE')],
  }));
}

interface KeyringBody {
  version: 1;
  root_key: string;
  created_at: string;
  /** Older roots, kept while a root rotation re-wraps what they wrap. */
  previous?: { root_key: string; created_at: string }[];
}

/**
 * The local keyring file DATA_DIR/keyring.json: created on first use with mode 0600; refused if
 * others can read it. It lies beside the data it protects (the server warns at start). A root
 * rotation writes the new root into it and keeps the old one under `previous` until every KEK and
 * service key is re-wrapped; each write replaces the file whole (write, then rename).
 */
export function keyringFileRing(dataDir: string): RootRing {
  const file = join(dataDir, KEYRING_FILE);
  const read = (): KeyringBody => {
    if (!existsSync(file)) {
      mkdirSync(dataDir, { recursive: true, mode: 0o700 });
      const body: KeyringBody = { version: 1, root_key: randomBytes(32).toString('base64'), created_at: new Date().toISOString() };
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
    const parsed = JSON.parse(readFileSync(file, 'utf8')) as Partial<KeyringBody>;
    if (typeof parsed.root_key !== 'string') throw new Error(`the keyring file ${file} has no root_key`);
    return parsed as KeyringBody;
  };
  const decode = (b64: string) => {
    const key = Buffer.from(b64, 'base64');
    if (key.length !== 32) throw new Error(`the keyring file ${file} holds a root key that is not 32 bytes`);
    return key;
  };
  const write = (body: KeyringBody) => {
    const tmp = `${file}.${process.pid}.tmp`;
    writeFileSync(tmp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600 });
    renameSync(tmp, file);
  };
  const ring: RootRing = ringOf(
    `keyring file ${file}`,
    'CUSTOS_ROOT_KEY',
    () => {
      const body = read();
      return { current: decode(body.root_key), previous: (body.previous ?? []).map((p) => decode(p.root_key)) };
    },
    {
      rotate() {
        const body = read();
        const previous = [{ root_key: body.root_key, created_at: body.created_at }, ...(body.previous ?? [])];
        write({ version: 1, root_key: randomBytes(32).toString('base64'), created_at: new Date().toISOString(), previous });
        ring.reload();
      },
      settle() {
        const body = read();
        if (body.previous === undefined) return;
        write({ version: 1, root_key: body.root_key, created_at: body.created_at });
        ring.reload();
      },
    },
  );
  return ring;
}

/** Labels under which the service keys were derived from the root before they were stored. */
export const LEGACY_LABELS = {
  'blind-index': 'blind-index/v1',
  'api-key-hash': 'api-key-hash/v1',
  'audit-mac': 'audit-mac/v1',
  'audit-signing': 'audit-signing/v1',
  identity: 'identity/v1',
  staff: 'staff/v1',
  idempotency: 'idempotency/v1',
  consent: 'consent/v1',
  'card-vault': 'card-vault/v1',
  'card-index': 'card-index/v1',
  receipts: 'receipts/v1',
  webhooks: 'webhooks/v1',
} as const;

/** PKCS#8 prefix of an Ed25519 private key; the 32-byte seed follows it. */
const ED25519_PKCS8_PREFIX = Buffer.from('302e020100300506032b657004220420', 'hex');

/** The Ed25519 signer of a 32-byte seed; its key id is the start of the SHA-256 of its public key. */
export function auditSignerFromSeed(seed: Buffer): AuditSigner {
  const privateKey = createPrivateKey({ key: Buffer.concat([ED25519_PKCS8_PREFIX, seed]), format: 'der', type: 'pkcs8' });
  const publicKey = createPublicKey(privateKey);
  const spki = publicKey.export({ format: 'der', type: 'spki' });
  return { privateKey, publicKey, keyId: createHash('sha256').update(spki).digest('hex').slice(0, 16) };
}

/**
 * The key set derived from a root with HKDF (the first versions of a database made before service
 * keys were stored). Tests use it as a ready key set.
 */
export function deriveRootKeys(root: Secret<Buffer>): RootKeys & { kekWrap: KeyObject } {
  const raw = check32(root.reveal(), 'the root key');
  return {
    kekWrap: createSecretKey(hkdf(raw, 'kek-wrap/v1')),
    blindIndex: createSecretKey(hkdf(raw, LEGACY_LABELS['blind-index'])),
    apiKeyHash: createSecretKey(hkdf(raw, LEGACY_LABELS['api-key-hash'])),
    auditMac: createSecretKey(hkdf(raw, LEGACY_LABELS['audit-mac'])),
    auditSigning: auditSignerFromSeed(hkdf(raw, LEGACY_LABELS['audit-signing'])),
  };
}
