import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import type { Config } from '../../config/config.ts';
import { KEYRING_FILE } from '../../crypto/keyring.ts';
import { touchesIn, type AtRest, type Touch } from './blast-radius.ts';

/**
 * GDPR Art. 34(3)(a): the data subjects need not be told of a breach when the data concerned was
 * made unintelligible to anyone not authorised to access it, such as by encryption — but only
 * while the keys that would make it intelligible were not exposed too. Custos decides this per
 * field from what the compromised actor was given and from the real key state:
 *
 * 1. `exposed` (read_in_clear): the actor was given the field in clear (a read whose purpose
 *    releases it in clear, a card reveal). Encryption at rest does not help what was handed out.
 * 2. When the stored data itself was reached — a copy of the database (`exposure.database`) or the
 *    server host (`exposure.host`) —
 *    a. `exposed` (stored_in_clear): the field is kept in clear (inventory protection `plain`, the
 *       audit log, the consent ledger, or a field the inventory does not declare);
 *    b. `exposed` (keys_exposed): the keys that open it were reachable too: the host (its memory
 *       holds unwrapped data keys, and whoever runs code there can have the root provider unwrap
 *       KEKs, an HSM included), a disclosed root key (`exposure.root_key`), or a database copy
 *       taken together with a root key kept in a file beside it (a SQLite database in the data
 *       folder with the embedded keyring in it, or a root key file in the SQLite file's folder);
 *    c. otherwise the field stays encrypted (AES-256-GCM under the customer's data key, wrapped
 *       by a KEK, wrapped by the root key), and the decision goes on to 3.
 * 3. `masked` (released_masked): the actor was given only the masked form. Art. 34(3)(a) does not
 *    cover what a mask leaves readable (a domain, the last digits); judge the risk on that part.
 * 4. `protected`: nothing of the field reached anyone in clear or masked — it stayed encrypted
 *    under keys that were not exposed (encrypted_keys_safe, when the stored data was reached), or
 *    the actor never received it (not_released: write-only uses, card relays) or only wrote it
 *    (written_only). A field the actor wrote is also flagged `modified` (check its integrity).
 *
 * Only `protected` lets Art. 34(3)(a) apply. A root key disclosed while neither the database nor
 * the host was reached exposes no data by itself (the wrapped keys and the data stayed out of
 * reach), but it must be rotated (`custos keys rotate --root`).
 */
export type Decision = 'exposed' | 'masked' | 'protected';
export type Reason = 'read_in_clear' | 'stored_in_clear' | 'keys_exposed' | 'released_masked' | 'encrypted_keys_safe' | 'not_released' | 'written_only';

export interface Exposure {
  /** A copy of the database or of a backup was taken or read by someone not authorised. */
  readonly database: boolean;
  /** The server host, its process memory or its data folder was compromised. */
  readonly host: boolean;
  /** The root key itself was disclosed. */
  readonly root_key: boolean;
}
export const NO_EXPOSURE: Exposure = Object.freeze({ database: false, host: false, root_key: false });

/** The key state a decision rests on (built from the configuration and the key store by `keyFactsOf`). */
export interface KeyFacts {
  /** Where the root key comes from: keyring (file in the data folder), env, file, pkcs11 (HSM). */
  readonly root_provider: 'keyring' | 'env' | 'file' | 'pkcs11';
  /** The root key id (names a key, reveals nothing of it). */
  readonly root_kid: string;
  /** The root key lies in a file in the data folder or beside the SQLite database: a copy of the database may take it along. */
  readonly root_beside_database: boolean;
  /** The current KEK version, and how many KEK versions are still wrapped by an older root key. */
  readonly kek_version: number;
  readonly keks_under_older_root: number;
}

export interface FieldDecision {
  readonly decision: Decision;
  readonly reason: Reason;
  /** GDPR Art. 34(3)(a) applies to this field. */
  readonly art34_3_a: boolean;
  /** The actor wrote this field. */
  readonly modified: boolean;
}

/** Whether the keys that open encrypted data were reachable along with it (rule 2b). */
export function keysExposed(exposure: Exposure, keys: Pick<KeyFacts, 'root_beside_database'>): boolean {
  return exposure.host || exposure.root_key || (exposure.database && keys.root_beside_database);
}

/** The decision for one field (or one customer's field), given how it was touched (touch bits, blast-radius.ts). */
export function decide(atRest: AtRest, mask: number, exposure: Exposure, keys: Pick<KeyFacts, 'root_beside_database'>): FieldDecision {
  const touches = new Set<Touch>(touchesIn(mask));
  const modified = touches.has('written');
  const out = (decision: Decision, reason: Reason): FieldDecision => ({ decision, reason, art34_3_a: decision === 'protected', modified });
  if (touches.has('clear')) return out('exposed', 'read_in_clear');
  if (exposure.database || exposure.host) {
    if (atRest === 'plain' || atRest === 'undeclared') return out('exposed', 'stored_in_clear');
    if (keysExposed(exposure, keys)) return out('exposed', 'keys_exposed');
  }
  if (touches.has('masked')) return out('masked', 'released_masked');
  if (exposure.database || exposure.host) return out('protected', 'encrypted_keys_safe');
  return out('protected', touches.has('not_released') || !modified ? 'not_released' : 'written_only');
}

/** Plain words for each reason, for drafts and the CLI. */
export const REASON_WORDS: Readonly<Record<Reason, string>> = {
  read_in_clear: 'given to the compromised actor in clear',
  stored_in_clear: 'stored without encryption and the stored data was reached',
  keys_exposed: 'encrypted, but the keys that open it were exposed with it',
  released_masked: 'given to the compromised actor only in masked form',
  encrypted_keys_safe: 'encrypted at rest (AES-256-GCM) under keys that were not exposed',
  not_released: 'never given to the compromised actor',
  written_only: 'only written by the compromised actor, never read back',
};

/**
 * The key facts of a running Custos: the configured root provider and where its key lies, and the
 * KEK and card-vault key versions from the key store.
 */
export function keyFactsOf(
  config: Pick<Config, 'root' | 'dataDir' | 'database'>,
  state: { root_kid: string; kek_version: number; keks_under_older_root: number },
): KeyFacts {
  const inside = (file: string, dir: string) => {
    const rel = relative(resolve(dir), resolve(file));
    return rel !== '' && !rel.startsWith('..') && !isAbsolute(rel);
  };
  // A copy of a SQLite database is a copy of its folder (the data folder, when the file lies in
  // it); a PostgreSQL dump holds no file of the server's host.
  const db = config.database;
  const folders = db.kind === 'sqlite' ? [inside(db.file, config.dataDir) ? config.dataDir : dirname(db.file)] : [];
  const root = config.root;
  const file = root.kind === 'keyring' ? join(config.dataDir, KEYRING_FILE) : root.kind === 'file' ? root.file : undefined;
  return {
    root_provider: root.kind,
    root_kid: state.root_kid,
    root_beside_database: file !== undefined && folders.some((d) => inside(file, d)),
    kek_version: state.kek_version,
    keks_under_older_root: state.keks_under_older_root,
  };
}
