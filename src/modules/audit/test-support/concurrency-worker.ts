/**
 * A separate server process for the audit concurrency test: opens the database named by its
 * environment (as `custos` would), appends AUDIT_WORKER_COUNT entries through group commit and
 * write transactions while building the tree in the background, then stops. Exit code 0 on success.
 */
import { loadConfig } from '../../../config/config.ts';
import { deriveRootKeys } from '../../../crypto/keyring.ts';
import { systemClock } from '../../../kernel/clock.ts';
import { openStore } from '../../../store/database.ts';
import { createAuditLog } from '../service.ts';
import { sampleEntry } from '../testing.ts';

const config = loadConfig(process.env);
if (config.rootKey === undefined) throw new Error('CUSTOS_ROOT_KEY is required');
const keys = deriveRootKeys(config.rootKey);
const count = Number(process.env.AUDIT_WORKER_COUNT ?? '100');
const tag = process.env.AUDIT_WORKER_TAG ?? 'w';
const store = await openStore(config.database);
const log = createAuditLog({ db: store.db, dialect: store.dialect, keys, clock: systemClock, flushMs: 1, chainIntervalMs: 5 });
log.start();
try {
  const work: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    const entry = sampleEntry(i, { requestId: `${tag}-${i}` });
    if (i % 5 === 0) work.push(store.db.transaction().execute((tx) => log.appendInTx(tx, { ...entry, action: 'vault.update' })));
    else work.push(log.append(entry));
    if (i % 25 === 0) work.push(log.chainPending().then(() => undefined));
  }
  await Promise.all(work);
  await log.stop();
} finally {
  await store.close();
}
