import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from '../../config/config.ts';
import { keyStatus } from '../../crypto/key-lifecycle.ts';
import { KEYRING_FILE } from '../../crypto/keyring.ts';
import { ROTATABLE_SERVICE_KEYS, type ServiceKeyName } from '../../crypto/service-keys.ts';
import type { Runtime } from '../../runtime.ts';
import { daysBetween, lines, pass, warn, type Finding } from './finding.ts';

/**
 * Key age against the rotation policy: the version in use of each KEK, service key and card key
 * (their `created_at` in keks and service_keys) and, with the embedded keyring, the root key, each
 * older than CUSTOS_KEY_CRYPTOPERIOD_DAYS (default 365) warns. NIST SP 800-57 Part 1 Rev. 5 §5.3.6
 * recommends originator-usage periods of up to two years for symmetric encryption, key-wrapping
 * and authentication keys and one to three years for signature keys; a year sits inside all of
 * them and matches PCI DSS 4.0.1 3.6.1.1, 3.7.4 (a defined cryptoperiod, keys changed at its end).
 * Keys that cannot rotate in place yet (blind index, identity, staff, consent, idempotency: their
 * data must be re-keyed with them) are left out. A root rotation left half-way, or a previous root
 * still presented after it finished, warns too.
 */
const ID = 'keys.age';
const CARD_KEYS = new Set(['card-vault', 'card-index']);

const rotateCommand = (name: string) => (CARD_KEYS.has(name) ? 'custos keys rotate --cards' : `custos keys rotate --key ${name}`);

/** When the embedded keyring's current root was made, or undefined. */
function keyringCreated(config: Config): string | undefined {
  const file = join(config.dataDir, KEYRING_FILE);
  if (config.root.kind !== 'keyring' || !existsSync(file)) return undefined;
  try {
    const at = (JSON.parse(readFileSync(file, 'utf8')) as { created_at?: unknown }).created_at;
    return typeof at === 'string' && !Number.isNaN(Date.parse(at)) ? at : undefined;
  } catch {
    return undefined;
  }
}

export async function checkKeyAge(runtime: Pick<Runtime, 'config' | 'store' | 'keys' | 'ring' | 'clock'>): Promise<Finding> {
  const { config, clock } = runtime;
  const period = config.keyCryptoperiodDays;
  const status = await keyStatus({ db: runtime.store.db, keys: runtime.keys, ring: runtime.ring, clock, cryptoperiodDays: period });
  const old: string[] = [];
  const fixes = new Set<string>();
  for (const k of status.keks)
    if (k.current && k.age_days > period) {
      old.push(`KEK v${k.version} is ${k.age_days} days old`);
      fixes.add('custos keys rotate');
    }
  for (const s of status.service_keys) {
    const rotatable = ROTATABLE_SERVICE_KEYS.includes(s.name as ServiceKeyName) || CARD_KEYS.has(s.name);
    if (s.current && rotatable && s.age_days > period) {
      old.push(`${CARD_KEYS.has(s.name) ? 'card key' : 'service key'} ${s.name} v${s.version} is ${s.age_days} days old`);
      fixes.add(rotateCommand(s.name));
    }
  }
  const rootMade = keyringCreated(config);
  if (rootMade !== undefined && daysBetween(rootMade, clock.now()) > period) {
    old.push(`the root key (keyring) is ${daysBetween(rootMade, clock.now())} days old`);
    fixes.add('custos keys rotate --root');
  }
  const policy = `the rotation policy of ${period} days (CUSTOS_KEY_CRYPTOPERIOD_DAYS; NIST SP 800-57 Part 1 §5.3.6)`;
  if (status.root.pending_rewrap > 0)
    return warn(ID, `a root rotation is unfinished: ${status.root.pending_rewrap} keys are still wrapped by an older root${old.length > 0 ? `; ${lines(old)}` : ''}`, 'run custos keys rotate --root again: it finishes where it stopped');
  if (status.root.previous.length > 0)
    return warn(
      ID,
      'the previous root key is still presented although every key is wrapped by the current one',
      config.root.kind === 'keyring' ? 'run custos keys rotate --root again: it drops the previous root from the keyring' : 'remove CUSTOS_ROOT_KEY_PREVIOUS (or CUSTOS_ROOT_KEY_PREVIOUS_FILE) and restart',
    );
  if (old.length > 0) return warn(ID, `${lines(old)}: past ${policy}`, `${[...fixes].join('; ')} (README: Keys and backups)`);
  const newest = Math.max(0, ...status.keks.filter((k) => k.current).map((k) => k.age_days));
  return pass(ID, `every key in use is within ${policy}; the current KEK is ${newest} days old`);
}
