/**
 * A tree builder in a process of its own, for the kill -9 test: opens the database named by its
 * environment, runs builder passes of AUDIT_TREE_BATCH entries and prints "pass" after each.
 */
import { loadConfig } from '../../../config/config.ts';
import { deriveRootKeys } from '../../../crypto/keyring.ts';
import { systemClock } from '../../../kernel/clock.ts';
import { openStore } from '../../../store/database.ts';
import { buildOnce } from '../tree-builder.ts';

const config = loadConfig(process.env);
if (config.rootKey === undefined) throw new Error('CUSTOS_ROOT_KEY is required');
const keys = deriveRootKeys(config.rootKey);
const store = await openStore(config.database);
const batch = Number(process.env.AUDIT_TREE_BATCH ?? '200');
for (;;) {
  const pass = await buildOnce({ db: store.db, dialect: store.dialect, keys, clock: systemClock, holder: 'killed-builder', leaseMs: 300, batch });
  process.stdout.write('pass\n');
  if (pass.leased && pass.processed < batch) break;
}
await store.close();
