import { setTimeout as sleep } from 'node:timers/promises';
import type { CommandRun } from '../main.ts';
import { parse } from '../main.ts';
import { UsageError } from '../io.ts';
import { runReseal } from '../../modules/vault/reseal.ts';
import { keyStatus, rotateDataKeys, rotateRoot, RootRotationError } from '../../crypto/key-lifecycle.ts';
import { rotateBlindIndex } from '../../crypto/blind-index-rotation.ts';
import { rotateServiceKey, ROTATABLE_SERVICE_KEYS, SERVICE_KEY_NAMES, type ServiceKeyName } from '../../crypto/service-keys.ts';

export const KEYS_USAGE = `  keys status [--json]                          every key's versions and ages; warns past the cryptoperiod
  keys rotate [--batch-size N]                  add a key-encryption key version and re-wrap every data key
  keys rotate --root [--batch-size N]           re-wrap every KEK and service key under a new root key
  keys rotate --key NAME                        add a version of one service key (${ROTATABLE_SERVICE_KEYS.join(', ')})
  keys rotate --key blind-index [--batch-size N] new blind-index key, every blind index rebuilt online, the old key destroyed (resumable)
  keys rotate --cards [--resume] [--batch-size N] add card-vault and card-index key versions, re-seal every card
  keys rotate --data-keys [--batch-size N]      give every customer a new data key, re-seal their records, destroy the old keys (resumable)
  keys retire                                   destroy the KEK versions that wrap no data key
  keys reseal [--batch-size N]                  seal every record still in the per-field format as one envelope (resumable)`;

/**
 * `custos keys status [--json]`: every key's versions, ages and what each wraps, with warnings
 * past the cryptoperiod (CUSTOS_KEY_CRYPTOPERIOD_DAYS).
 * `custos keys rotate --root`: re-wraps the KEKs and service keys under a new root (see
 * src/crypto/key-lifecycle.ts for how each provider presents the old and the new root).
 * `custos keys rotate --key NAME`: adds a version of one service key; `--key blind-index` also
 * rebuilds every blind index under it online and destroys the old one (blind-index-rotation.ts).
 * `custos keys retire`: destroys every KEK version that wraps no data key any more.
 *
 * `custos keys rotate`: adds a KEK version, then re-wraps data keys in batches. Each batch is its
 * own transaction and only moves keys still under an older version, so an interrupted rotation
 * run again simply finishes; reads and writes go on meanwhile (PCI DSS 3.6, 3.7: cryptoperiods).
 *
 * On SQLite one connection writes at a time, and a server waiting for the lock retries after
 * growing sleeps (up to 100 ms). Batches run back to back would take the lock again before the
 * server's next try and hold its requests (every read writes its audit entry) until the rotation
 * ends. So on SQLite the rotation gives way after each batch for as long as the batch took, and at
 * least GIVE_WAY_MS: it holds the write lock at most about half the time.
 */
const GIVE_WAY_MS = 5;

function batchSize(given: string | undefined): number {
  const batch = given === undefined ? 500 : Number(given);
  if (!Number.isInteger(batch) || batch < 1 || batch > 10_000) throw new UsageError('--batch-size must be 1..10000');
  return batch;
}

export const keysCommand: CommandRun = async (runtime, args, io) => {
  const [sub, ...rest] = args;
  if (sub === 'status') {
    const { values } = parse(rest, { json: { type: 'boolean' } });
    const status = await keyStatus({
      db: runtime.store.db,
      keys: runtime.keys,
      ring: runtime.ring,
      clock: runtime.clock,
      cryptoperiodDays: runtime.config.keyCryptoperiodDays,
    });
    if (values.json === true) io.out(JSON.stringify(status, null, 2));
    else {
      io.out(`root: ${status.root.provider}, key ${status.root.kid}${status.root.previous.length > 0 ? ` (previous: ${status.root.previous.join(', ')})` : ''}`);
      io.out(`current KEK version: ${status.keks.find((k) => k.current)?.version ?? 0}`);
      for (const v of status.keks) io.out(`v${v.version}\t${v.created_at}\t${v.age_days} days\t${v.data_keys} data keys`);
      io.out('service keys:');
      for (const k of status.service_keys) io.out(`${k.name} v${k.version}${k.current ? ' (current)' : ''}\t${k.created_at}\t${k.age_days} days`);
      io.out(`data keys: ${status.data_keys.versions} versions of ${status.data_keys.subjects} customers`);
      for (const w of status.warnings) io.err(`warning: ${w}`);
    }
    return 0;
  }
  if (sub === 'retire') {
    parse(rest, {});
    const retired = await runtime.keys.retire();
    for (const v of retired) await runtime.audit.append({ actor: 'cli', action: 'keys.retire', recordId: `kek:v${v}`, fields: [], outcome: 'success' });
    io.out(retired.length === 0 ? 'no KEK version to retire' : `destroyed KEK versions ${retired.map((v) => `v${v}`).join(', ')}`);
    return 0;
  }
  if (sub === 'rotate') {
    const { values } = parse(rest, { 'batch-size': { type: 'string' }, resume: { type: 'boolean' }, root: { type: 'boolean' }, key: { type: 'string' }, cards: { type: 'boolean' }, 'data-keys': { type: 'boolean' } });
    const batch = batchSize(values['batch-size']);
    if ([values.root === true, values.key !== undefined, values.cards === true, values['data-keys'] === true].filter(Boolean).length > 1) {
      throw new UsageError('--root, --key, --cards and --data-keys go separately');
    }
    if (values['data-keys'] === true) {
      const { db } = runtime.store;
      const result = await rotateDataKeys(
        {
          db,
          keys: runtime.keys,
          clock: runtime.clock,
          resealPass: () =>
            runReseal(runtime.vault, {
              batch,
              giveWayMs: runtime.config.database.kind === 'sqlite' ? GIVE_WAY_MS : 0,
              target: (subjectId) => runtime.keys.dekFor(db, subjectId, false),
            }),
        },
        batch,
        (phase, done) => io.progress(phase === 'keys' ? `new data keys: ${done}` : `records re-sealed: ${done}`),
      );
      io.done();
      await runtime.audit.append({ actor: 'cli', action: 'keys.rotate', recordId: 'data-keys', fields: [], outcome: result.complete ? 'success' : 'failure' });
      for (const id of result.failed) io.err(`record ${id} failed its integrity check and was left as it is`);
      if (!result.complete) {
        io.out(`rotated ${result.rotated} data keys, re-sealed ${result.resealed} records; not finished (${result.failed.length} failed their integrity check, or writes kept landing under the old keys): old keys kept, run it again`);
        return 1;
      }
      io.out(`rotated ${result.rotated} data keys${result.resumed ? ' (resumed)' : ''}, re-sealed ${result.resealed} records, destroyed ${result.destroyed} superseded versions`);
      return 0;
    }
    if (values.cards === true) {
      // New card-vault and card-index versions, then every card re-sealed in batches; each batch is
      // its own compare-and-set, so an interrupted run resumes with --resume and every card stays
      // readable throughout (older versions are kept).
      if (values.resume !== true) {
        const added = await runtime.cards.rotateKeys();
        await runtime.audit.append({ actor: 'cli', action: 'keys.rotate', recordId: `card-vault:v${added.vault}`, fields: [], outcome: 'success' });
      }
      let done = 0;
      for (let moved = await runtime.cards.resealBatch(batch); moved > 0; moved = await runtime.cards.resealBatch(batch)) {
        done += moved;
        io.progress(`re-sealed ${done} cards`);
      }
      io.out(`rotated: card keys; ${done} cards re-sealed, ${await runtime.cards.pendingReseal()} left`);
      return 0;
    }
    if (values.key === 'blind-index') {
      const result = await rotateBlindIndex(
        {
          db: runtime.store.db,
          dialect: runtime.store.dialect,
          ring: runtime.ring,
          clock: runtime.clock,
          keys: runtime.keys,
          blindIndex: runtime.blindIndex,
          records: (after, limit, target) => runtime.vault.reindexBatch(after, limit, target),
          accounts: (after, limit, target) => runtime.identity.accounts.reindexBatch(after, limit, target),
          giveWayMs: runtime.config.database.kind === 'sqlite' ? GIVE_WAY_MS : 0,
        },
        batch,
        (phase, done) => io.progress(phase === 'cleanup' ? `old index rows deleted: ${done}` : `${phase} indexed under the new key: ${done}`),
      );
      io.done();
      await runtime.audit.append({ actor: 'cli', action: 'keys.rotate', recordId: `blind-index:v${result.version}`, fields: [], outcome: result.complete ? 'success' : 'failure' });
      for (const id of result.failed) io.err(`${id} failed to open and was not indexed under the new key`);
      if (!result.complete) {
        io.out(`blind-index v${result.version}: not finished (${result.failed.length} failed to open): both versions stay in force, run it again`);
        return 1;
      }
      io.out(
        `rotated: blind-index v${result.version}${result.resumed ? ' (resumed)' : ''}; ${result.records} records and ${result.accounts} accounts indexed, ` +
          `${result.destroyed.length === 0 ? 'no old version left' : `destroyed ${result.destroyed.map((v) => `v${v}`).join(', ')}`} and ${result.removedRows} old index rows`,
      );
      return 0;
    }
    if (values.key !== undefined) {
      const name = values.key as ServiceKeyName;
      if (!SERVICE_KEY_NAMES.includes(name)) throw new UsageError(`--key must be one of ${SERVICE_KEY_NAMES.join(', ')}`);
      if (!ROTATABLE_SERVICE_KEYS.includes(name)) {
        throw new UsageError(`${name} cannot rotate yet: what it protects must be re-keyed with it (only ${ROTATABLE_SERVICE_KEYS.join(', ')} rotate now)`);
      }
      const version = await rotateServiceKey(runtime.store.db, runtime.ring, runtime.clock, name);
      await runtime.audit.append({ actor: 'cli', action: 'keys.rotate', recordId: `${name}:v${version}`, fields: [], outcome: 'success' });
      io.out(`added ${name} v${version}; servers use it from their next start, and older versions keep opening and verifying what was made under them`);
      return 0;
    }
    if (values.root === true) {
      let result;
      try {
        result = await rotateRoot({ db: runtime.store.db, keys: runtime.keys, ring: runtime.ring }, batch, (done) => io.progress(`re-wrapped ${done}`));
      } catch (error) {
        if (error instanceof RootRotationError) throw new UsageError(error.message);
        throw error;
      }
      io.done();
      await runtime.audit.append({ actor: 'cli', action: 'keys.rotate', recordId: `root:${result.kid}`, fields: [], outcome: 'success' });
      io.out(`rotated: root ${result.kid} wraps every KEK and service key (${result.rewrapped} re-wrapped)`);
      return 0;
    }
    // Finish an interrupted rotation first: if older versions still wrap keys, the newest KEK is the target.
    const before = await runtime.keys.status();
    const unfinished = before.versions.some((v) => v.version < before.current && v.subjects > 0);
    const target = unfinished || values.resume === true ? before.current : await runtime.keys.addKekVersion();
    const total = await runtime.keys.pendingRewrap(target);
    io.err(unfinished ? `resuming rotation to KEK v${target}: ${total} data keys to re-wrap` : `added KEK v${target}; ${total} data keys to re-wrap`);
    const giveWay = runtime.config.database.kind === 'sqlite';
    let done = 0;
    for (;;) {
      const started = performance.now();
      const moved = await runtime.keys.rewrapBatch(target, batch);
      if (moved === 0 && (await runtime.keys.pendingRewrap(target)) === 0) break;
      done += moved;
      io.progress(`re-wrapped ${done}/${total}`);
      if (giveWay) await sleep(Math.max(GIVE_WAY_MS, performance.now() - started));
    }
    io.done();
    await runtime.audit.append({ actor: 'cli', action: 'keys.rotate', recordId: `kek:v${target}`, fields: [], outcome: 'success' });
    io.out(`rotated: KEK v${target} wraps every data key (${done} re-wrapped)`);
    return 0;
  }
  if (sub === 'reseal') {
    const { values } = parse(rest, { 'batch-size': { type: 'string' } });
    const batch = batchSize(values['batch-size']);
    const { db } = runtime.store;
    const report = await runReseal(runtime.vault, {
      batch,
      giveWayMs: runtime.config.database.kind === 'sqlite' ? GIVE_WAY_MS : 0,
      target: (subjectId) => runtime.keys.dekFor(db, subjectId, false),
      progress: (examined, resealed) => io.progress(`examined ${examined} records, re-sealed ${resealed}`),
    });
    io.done();
    await runtime.audit.append({ actor: 'cli', action: 'keys.reseal', fields: [], outcome: report.complete ? 'success' : 'failure' });
    for (const id of report.failed) io.err(`record ${id} failed its integrity check and was left as it is`);
    if (!report.complete) {
      io.out(`re-sealed ${report.resealed} of ${report.examined} records; ${report.failed.length} failed their integrity check: not finished`);
      return 1;
    }
    io.out(`re-sealed ${report.resealed} records (${report.examined} examined): every record is an envelope`);
    return 0;
  }
  throw new UsageError(`keys status|rotate|retire|reseal\n${KEYS_USAGE}`);
};
