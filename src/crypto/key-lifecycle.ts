import { sql, type Kysely } from 'kysely';
import type { Clock } from '../kernel/clock.ts';
import type { Database } from '../store/schema.ts';
import { SHRED_FIRST, SHRED_LAST, type KeyStore } from './key-store.ts';
import type { RootRing } from './keyring.ts';
import { rewrapServiceKeys, serviceKeyStatus } from './service-keys.ts';
import { BLIND_INDEX_REBUILD } from './blind-index-rotation.ts';

/**
 * What `custos keys status` and `custos keys rotate --root` do, over the key store, the service
 * keys and the root ring.
 *
 * Cryptoperiods (NIST SP 800-57 Pt. 1 §5.3): every KEK and service-key version records when it was
 * made, and the status warns when the version in use (the newest) is older than the configured
 * cryptoperiod. Nothing is rotated automatically: the warning asks for `custos keys rotate`.
 */
export interface KeyStatus {
  /** The current KEK version, and each KEK version with the data keys it wraps (the first form of this report). */
  current: number;
  versions: { version: number; created_at: string; subjects: number }[];
  root: { provider: string; kid: string; previous: string[]; pending_rewrap: number };
  keks: { version: number; created_at: string; age_days: number; root_kid: string | null; data_keys: number; current: boolean }[];
  service_keys: { name: string; version: number; created_at: string; age_days: number; root_kid: string; current: boolean }[];
  data_keys: { subjects: number; versions: number };
  /** The target version of an unfinished blind-index rebuild (both versions in force), or null. */
  blind_index_rebuild: number | null;
  cryptoperiod_days: number;
  warnings: string[];
}

const DAY = 86_400_000;

export async function keyStatus(deps: { db: Kysely<Database>; keys: KeyStore; ring: RootRing; clock: Clock; cryptoperiodDays: number }): Promise<KeyStatus> {
  const { db, keys, ring, clock, cryptoperiodDays } = deps;
  const now = clock.now().getTime();
  const age = (at: string) => Math.floor((now - Date.parse(at)) / DAY);
  const kekStatus = await keys.status();
  const service = await serviceKeyStatus(db);
  const newest = new Map<string, number>();
  for (const s of service) newest.set(s.name, Math.max(newest.get(s.name) ?? 0, s.version));
  const dataKeys = await db
    .selectFrom('subject_keys')
    .select([(eb) => eb.fn.count<number>('subject_id').distinct().as('subjects'), (eb) => eb.fn.countAll<number>().as('versions')])
    .executeTakeFirst();
  const rebuild = await db.selectFrom('key_state').select('value').where('name', '=', BLIND_INDEX_REBUILD).executeTakeFirst();
  const status: KeyStatus = {
    current: kekStatus.current,
    versions: kekStatus.versions.map(({ version, created_at, subjects }) => ({ version, created_at, subjects })),
    root: {
      provider: ring.name,
      kid: ring.current().kid,
      previous: ring.previous().map((r) => r.kid),
      pending_rewrap: (await keys.pendingRootRewrap()) + service.filter((s) => s.root_kid !== ring.current().kid).length,
    },
    keks: kekStatus.versions.map((v) => ({
      version: v.version,
      created_at: v.created_at,
      age_days: age(v.created_at),
      root_kid: v.root_kid,
      data_keys: v.subjects,
      current: v.version === kekStatus.current,
    })),
    service_keys: service.map((s) => ({ ...s, age_days: age(s.created_at), current: newest.get(s.name) === s.version })),
    data_keys: { subjects: Number(dataKeys?.subjects ?? 0), versions: Number(dataKeys?.versions ?? 0) },
    blind_index_rebuild: rebuild === undefined ? null : Number(rebuild.value),
    cryptoperiod_days: cryptoperiodDays,
    warnings: [],
  };
  for (const k of status.keks) {
    if (k.current && k.age_days > cryptoperiodDays) status.warnings.push(`KEK v${k.version} is ${k.age_days} days old, past the cryptoperiod of ${cryptoperiodDays} days: run custos keys rotate`);
    if (!k.current && k.data_keys === 0) status.warnings.push(`KEK v${k.version} wraps no data key: custos keys retire destroys it`);
  }
  for (const s of status.service_keys) {
    if (s.current && s.age_days > cryptoperiodDays) status.warnings.push(`service key ${s.name} v${s.version} is ${s.age_days} days old, past the cryptoperiod of ${cryptoperiodDays} days`);
  }
  if (status.blind_index_rebuild !== null) status.warnings.push(`the rebuild of every blind index under blind-index v${status.blind_index_rebuild} is unfinished: run custos keys rotate --key blind-index`);
  if (status.root.pending_rewrap > 0) status.warnings.push(`${status.root.pending_rewrap} keys are not yet wrapped by the current root: run custos keys rotate --root`);
  return status;
}

export class RootRotationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'RootRotationError';
  }
}

/**
 * Root rotation: re-wraps every KEK and service key under the provider's current root, in batches,
 * each its own transaction conditional on the root it read, so a rotation killed half-way and run
 * again finishes. With the keyring file, a new root is made first (the old one kept as previous in
 * the file until the end); with CUSTOS_ROOT_KEY, CUSTOS_ROOT_KEY_FILE or an HSM the operator
 * presents the new root as current and the old one as previous, and this only re-wraps.
 */
export async function rotateRoot(
  deps: { db: Kysely<Database>; keys: KeyStore; ring: RootRing },
  batch: number,
  progress: (done: number) => void = () => undefined,
): Promise<{ started: boolean; rewrapped: number; kid: string }> {
  const { db, keys, ring } = deps;
  const pending = async () =>
    (await keys.pendingRootRewrap()) +
    Number((await db.selectFrom('service_keys').select((eb) => eb.fn.countAll<number>().as('n')).where('root_kid', '!=', ring.current().kid).executeTakeFirst())?.n ?? 0);
  let started = false;
  if ((await pending()) === 0 && ring.previous().length === 0) {
    if (ring.rotate === undefined) {
      throw new RootRotationError(
        `the current root already wraps every key: present the new root as ${ring.variable === 'CUSTOS_PKCS11_KEY_LABEL' ? 'the HSM key' : ring.variable} and the old one as ${ring.variable === 'CUSTOS_ROOT_KEY_FILE' ? 'CUSTOS_ROOT_KEY_PREVIOUS_FILE' : 'CUSTOS_ROOT_KEY_PREVIOUS'}, then run this again`,
      );
    }
    ring.rotate();
    started = true;
  }
  let done = 0;
  for (;;) {
    const moved = (await keys.rewrapKeksToRoot(batch)) + (await rewrapServiceKeys(db, ring, batch));
    done += moved;
    progress(done);
    if (moved === 0 && (await pending()) === 0) break;
  }
  await sql`UPDATE key_state SET value = value + 1 WHERE name = 'generation'`.execute(db);
  ring.settle?.();
  return { started, rewrapped: done, kid: ring.current().kid };
}

/** key_state row holding the start (ms) of an unfinished data-key rotation. */
const DEK_ROTATION = 'dek-rotation-since';

export interface DataKeyRotation {
  /** Subjects given a new data key by this run. */
  rotated: number;
  /** Records re-sealed under their subject's new key. */
  resealed: number;
  /** Superseded data-key versions destroyed at the end. */
  destroyed: number;
  /** Records that failed their integrity check and were left as they are (then nothing is destroyed). */
  failed: string[];
  /** Whether a rotation killed earlier was resumed. */
  resumed: boolean;
  /** Whether it finished: every record under its subject's newest key, the old versions destroyed. */
  complete: boolean;
}

/**
 * `custos keys rotate --data-keys`: every customer owning vault records gets a new data key
 * (NIST SP 800-57 Pt. 1 §5.3: a new originator-usage period), their records are re-sealed under
 * it, and once a full pass finds every record under the newest key, the superseded versions are
 * destroyed. Online and resumable: the start is kept in `key_state`, so a run killed at any step
 * and run again rotates only the subjects still on a key made before that start; each re-seal is a
 * compare-and-swap on the record version, so a concurrent write is never lost; reads open any
 * version until the end. Old versions go only after a pass that re-sealed nothing (a write that
 * sealed under the old key while the first pass ran is caught by the second).
 */
export async function rotateDataKeys(
  deps: {
    db: Kysely<Database>;
    keys: KeyStore;
    clock: Clock;
    /** One re-seal pass over every record to the subject's newest key (runReseal over the vault). */
    resealPass: () => Promise<{ resealed: number; failed: string[] }>;
  },
  batch: number,
  progress: (phase: 'keys' | 'records', done: number) => void = () => undefined,
): Promise<DataKeyRotation> {
  const { db, keys, clock } = deps;
  const kept = await db.selectFrom('key_state').select('value').where('name', '=', DEK_ROTATION).executeTakeFirst();
  const resumed = kept !== undefined;
  const sinceMs = resumed ? Number(kept.value) : clock.now().getTime();
  if (!resumed) await db.insertInto('key_state').values({ name: DEK_ROTATION, value: sinceMs }).execute();
  const since = new Date(sinceMs).toISOString();
  const report: DataKeyRotation = { rotated: 0, resealed: 0, destroyed: 0, failed: [], resumed, complete: false };
  for (;;) {
    const subjects = await keys.subjectsToRotate(since, batch);
    if (subjects.length === 0) break;
    report.rotated += await keys.addDekVersions(subjects);
    progress('keys', report.rotated);
  }
  // Passes until one re-seals nothing: then no record is left under a superseded version.
  for (let pass = 0; pass < 5; pass++) {
    const step = await deps.resealPass();
    report.resealed += step.resealed;
    report.failed = step.failed;
    progress('records', report.resealed);
    if (step.failed.length > 0) return report;
    if (step.resealed === 0) {
      report.destroyed = await keys.destroySuperseded();
      await db.deleteFrom('key_state').where('name', '=', DEK_ROTATION).execute();
      report.complete = true;
      return report;
    }
  }
  return report;
}

export interface BackupShredStep {
  /** The earliest destruction backups may still hold (ISO), or null when there is none. */
  pending_since: string | null;
  /** Whether the rotation was due (a dry run only says so). */
  due: boolean;
  /** The KEK version every data key is now wrapped under, when this step rotated. */
  rotated_to: number | null;
  /** KEK versions destroyed. */
  retired: number[];
}

/**
 * Crypto-shredding reaches backups only once the KEK that wrapped a destroyed data key is gone: a
 * backup holds the key wrapped under the KEK current when it was taken. `KeyStore.destroy` notes
 * each destruction; once the earliest is `days` old, this rotates the KEK (a new version, every
 * data key re-wrapped) and retires every older version. Every destruction before the new KEK's
 * creation is then covered; one that came during the rotation moves the mark to the rotation's
 * start, so the next rotation comes no later than due (it may come earlier, never later).
 */
export async function rotateKekAfterShreds(
  deps: { db: Kysely<Database>; keys: KeyStore; clock: Clock },
  days: number,
  dryRun: boolean,
  batch = 500,
): Promise<BackupShredStep> {
  const { db, keys, clock } = deps;
  const marks = await db.selectFrom('key_state').select(['name', 'value']).where('name', 'in', [SHRED_FIRST, SHRED_LAST]).execute();
  const first = marks.find((m) => m.name === SHRED_FIRST);
  const step: BackupShredStep = { pending_since: first === undefined ? null : new Date(Number(first.value)).toISOString(), due: false, rotated_to: null, retired: [] };
  if (first === undefined) return step;
  const startMs = clock.now().getTime();
  step.due = Number(first.value) + days * DAY <= startMs;
  if (!step.due || dryRun) return step;
  const target = await keys.addKekVersion();
  while ((await keys.rewrapBatch(target, batch)) > 0 || (await keys.pendingRewrap(target)) > 0);
  step.rotated_to = target;
  step.retired = await keys.retire();
  const last = await db.selectFrom('key_state').select('value').where('name', '=', SHRED_LAST).executeTakeFirst();
  if (last !== undefined && Number(last.value) >= startMs) {
    await db.updateTable('key_state').set({ value: startMs }).where('name', '=', SHRED_FIRST).execute();
  } else {
    await db.deleteFrom('key_state').where('name', 'in', [SHRED_FIRST, SHRED_LAST]).execute();
  }
  return step;
}
