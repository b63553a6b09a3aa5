import { loadConfig } from '../../src/config/config.ts';
import { createLogger } from '../../src/kernel/logger.ts';
import { createVaultSubjects } from '../../src/modules/vault/audience.ts';
import { createErasureService, identityAccountCloser, type ErasureStage } from '../../src/modules/rights/erasure.ts';
import { openRuntime } from '../../src/runtime.ts';

/**
 * Runs one erasure request in a process of its own on the database the environment names, and
 * stops dead after the step named by argv[3]: it prints `stopped <stage>` and waits to be killed.
 * Used by rights.erasure.test.ts to SIGKILL a run at a known point.
 */
const [requestId, stopAt] = process.argv.slice(2) as [string, ErasureStage];
const config = loadConfig(process.env as Record<string, string>);
const runtime = await openRuntime(config, { logger: createLogger('silent'), migrate: false, background: false });
runtime.audit.start();
const erasure = createErasureService({
  db: runtime.store.db,
  clock: runtime.clock,
  audit: runtime.audit,
  rights: runtime.rights,
  vault: runtime.vaultErasure,
  subjects: createVaultSubjects({ db: runtime.store.db, read: runtime.store.read }),
  inventory: runtime.inventory,
  bookkeepingCountry: config.rights.bookkeepingCountry,
  kekRotationAfterErasureDays: config.rights.kekRotationAfterErasureDays,
  signer: runtime.rootKeys.receiptSigning,
  accounts: identityAccountCloser(runtime.identity),
  afterStage: async (stage) => {
    if (stage !== stopAt) return;
    process.stdout.write(`stopped ${stage}\n`);
    await new Promise(() => undefined);
  },
});
await erasure.run({ actor: { ref: 'system:erasure-test', kind: 'system', purposes: [] }, requestId: 'erasure-child' }, requestId);
process.stdout.write('finished\n');
await runtime.close();
