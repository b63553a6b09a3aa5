import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, isAbsolute } from 'node:path';
import { parseEnv } from 'node:util';
import type { Config } from '../../config/config.ts';
import { KEYRING_FILE } from '../../crypto/keyring.ts';
import { failed, lines, pass, some, warn, type Finding } from './finding.ts';
import { certificateFiles } from './tls-config.ts';

/**
 * Files on disk: who may read the key material and the data (`files.permissions`), and whether
 * the root key lies beside the data it protects (`keys.root-location`). Key files must be 0600 and
 * owned by the user running Custos; the data folder 0700; the SQLite files 0600 (the service makes
 * them so under umask 077 — a later copy or chmod may not keep it).
 */
interface Watched {
  readonly path: string;
  readonly what: string;
  /** Key material: readable by anyone else fails; data: warns. */
  readonly secret: boolean;
  /** The file must exist (a configured key file). */
  readonly required: boolean;
}

function watched(config: Config): Watched[] {
  const out: Watched[] = [];
  const root = config.root;
  if (root.kind === 'keyring') out.push({ path: join(config.dataDir, KEYRING_FILE), what: 'the keyring file', secret: true, required: false });
  if (root.kind === 'file') {
    out.push({ path: root.file, what: 'CUSTOS_ROOT_KEY_FILE', secret: true, required: true });
    if (root.previousFile !== undefined) out.push({ path: root.previousFile, what: 'CUSTOS_ROOT_KEY_PREVIOUS_FILE', secret: true, required: true });
  }
  if (root.kind === 'pkcs11') out.push({ path: root.pinFile, what: 'CUSTOS_PKCS11_PIN_FILE', secret: true, required: true });
  const tls = certificateFiles(config);
  if (tls !== undefined) out.push({ path: tls.key, what: 'the TLS private key', secret: true, required: config.tls.mode === 'files' });
  out.push({ path: config.dataDir, what: 'the data folder', secret: false, required: false });
  if (config.database.kind === 'sqlite')
    for (const suffix of ['', '-wal', '-shm']) out.push({ path: `${config.database.file}${suffix}`, what: `the SQLite database${suffix === '' ? '' : ` (${suffix.slice(1)})`}`, secret: false, required: false });
  return out;
}

const octal = (mode: number) => `0${(mode & 0o777).toString(8)}`;

export function checkFilePermissions(config: Config, uid: number | undefined = process.getuid?.()): Finding {
  const id = 'files.permissions';
  const failures: string[] = [];
  const warnings: string[] = [];
  let checked = 0;
  for (const w of watched(config)) {
    let st;
    try {
      st = statSync(w.path);
    } catch {
      if (w.required) failures.push(`${w.what} (${w.path}) does not exist`);
      continue;
    }
    checked += 1;
    const open = st.mode & 0o077;
    if (open !== 0) {
      const who = (open & 0o007) !== 0 ? 'every user' : 'its group';
      const line = `${w.what} ${w.path} is mode ${octal(st.mode)}: ${who} can ${(open & 0o022) !== 0 ? 'change' : 'read'} it`;
      (w.secret ? failures : warnings).push(line);
    }
    if (uid !== undefined && st.uid !== uid) warnings.push(`${w.what} ${w.path} is owned by uid ${st.uid}, not by the user running Custos (uid ${uid})`);
  }
  const fix = 'chmod 600 each key file and the SQLite files, chmod 700 the data folder, and chown them to the user that runs Custos';
  if (failures.length > 0) return failed(id, lines([...failures, ...warnings]), fix);
  if (warnings.length > 0) return warn(id, lines(warnings), fix);
  return pass(id, `${checked} key and data files and folders: readable by their owner only`);
}

const inside = (dir: string, path: string) => {
  const rel = relative(dir, path);
  return rel === '' || (!rel.startsWith('..') && !isAbsolute(rel));
};

/**
 * Where the root key lies. The embedded keyring warns (the issue's rule: a warning on the
 * embedded default). A root key file in a folder that also holds the data folder or the SQLite
 * database warns: a copy of that folder holds both. A `.env` holding CUSTOS_ROOT_KEY in the working
 * directory warns (bin/custos.js and npm start read it).
 */
export function checkRootLocation(config: Config, cwd: string): Finding {
  const id = 'keys.root-location';
  const fix = 'keep the root key apart from the data: CUSTOS_ROOT_KEY_FILE outside the data folder (a systemd credential, a secret mount), CUSTOS_ROOT_KEY from a secret store, or an HSM; move it with custos keys rotate --root (README: Keys and backups)';
  const root = config.root;
  if (root.kind === 'keyring')
    return warn(id, `the root key lies in ${join(config.dataDir, KEYRING_FILE)}, beside the data it protects (the embedded default): a copy of the data folder holds both`, fix);
  if (root.kind === 'pkcs11') return pass(id, `the root wrapping key lives in the HSM token ${root.tokenLabel} and never leaves it`);
  if (root.kind === 'file') {
    const dataPlaces = [config.dataDir, ...(config.database.kind === 'sqlite' ? [config.database.file] : [])];
    const keyFiles = [root.file, ...(root.previousFile === undefined ? [] : [root.previousFile])];
    const near = keyFiles.filter((f) => dirname(f) !== '/' && dataPlaces.some((p) => inside(dirname(f), p)));
    if (near.length > 0) return warn(id, `the root key file ${some(near)} lies in a folder that also holds the data: a copy of that folder holds both`, fix);
    return pass(id, 'the root key comes from CUSTOS_ROOT_KEY_FILE, outside the data folder');
  }
  const envFile = join(cwd, '.env');
  if (existsSync(envFile)) {
    try {
      if (parseEnv(readFileSync(envFile, 'utf8')).CUSTOS_ROOT_KEY !== undefined)
        return warn(id, `${envFile} holds CUSTOS_ROOT_KEY: the root key lies in a file in the folder Custos runs in`, 'remove CUSTOS_ROOT_KEY from .env and give it through the environment from a secret store');
    } catch {
      // An unreadable .env is the entry point's problem; the key then comes from the environment.
    }
  }
  return pass(id, 'the root key comes from the environment (CUSTOS_ROOT_KEY), not from a file beside the data');
}
