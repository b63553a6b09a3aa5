import { createSecretKey, hkdfSync } from 'node:crypto';
import type { Config } from './config/config.ts';
import { createKeyStore, type KeyStore } from './crypto/key-store.ts';
import { deriveRootKeys, envKeyProvider, fileKeyProvider, type RootKeys } from './crypto/keyring.ts';
import { systemClock, type Clock } from './kernel/clock.ts';
import { createLogger, type Logger } from './kernel/logger.ts';
import { createApiKeyService, type ApiKeyService } from './modules/apikeys/service.ts';
import { createAuditLog, type AuditLog } from './modules/audit/service.ts';
import { loadInventory, type Inventory } from './modules/inventory/index.ts';
import { createPolicyService, type PolicyService } from './modules/policy/service.ts';
import { consentGateFor, openConsent } from './modules/consent/module.ts';
import type { ConsentModule } from './modules/consent/module.ts';
import { createProcessorService, type ProcessorService } from './modules/processors/service.ts';
import { createVaultSubjects } from './modules/vault/audience.ts';
import { createVaultService, type VaultService } from './modules/vault/service.ts';
import { customerSelfGuard } from './modules/identity/sessions/session-guard.ts';
import { createIdentityServices, type IdentityServices } from './modules/identity/sessions/session-runtime.ts';
import { staffSignInStanding } from './modules/identity/sessions/session-staff.ts';
import { deriveStaffKeys } from './modules/staff/keys.ts';
import { createStaffServices, type StaffServices } from './modules/staff/services.ts';
import { migrate, openStore, type Store } from './store/database.ts';

/**
 * Everything a server process or a CLI command needs, wired once from the configuration: the
 * store, the key hierarchy, the inventory and the services. The HTTP app and the CLI are thin
 * layers over this.
 */
export interface Runtime {
  readonly config: Config;
  readonly store: Store;
  readonly rootKeys: RootKeys;
  readonly keys: KeyStore;
  readonly inventory: Inventory;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly audit: AuditLog;
  readonly apiKeys: ApiKeyService;
  readonly policy: PolicyService;
  readonly vault: VaultService;
  readonly identity: IdentityServices;
  readonly staff: StaffServices;
  readonly consent: ConsentModule;
  readonly processors: ProcessorService;
  close(): Promise<void>;
}

export interface RuntimeOptions {
  readonly clock?: Clock;
  readonly logger?: Logger;
  /** Run migrations before wiring (server start, `custos migrate`); default true. */
  readonly migrate?: boolean;
  /** Start the audit chainer in the background (servers); default true. */
  readonly background?: boolean;
}

export async function openRuntime(config: Config, options: RuntimeOptions = {}): Promise<Runtime> {
  const clock = options.clock ?? systemClock;
  const logger = options.logger ?? createLogger(config.logLevel);
  // Validate the inventory and the keys before touching the database: a bad file stops start-up.
  const inventory = loadInventory(config.inventoryFile);
  const provider = config.rootKey !== undefined ? envKeyProvider(config.rootKey) : fileKeyProvider(config.dataDir);
  const rootKeys = deriveRootKeys(provider);
  // Module base keys, HKDF of the root under their own labels (only ever used as HKDF input).
  const root = provider.rootKey().reveal();
  const moduleBase = (label: string) => createSecretKey(Buffer.from(hkdfSync('sha256', root, Buffer.alloc(0), `custos/${label}`, 32)));
  const store = await openStore(config.database);
  try {
    if (options.migrate !== false) await migrate(store);
    const keys = createKeyStore({ db: store.db, kekWrap: rootKeys.kekWrap, clock });
    await keys.init();
    const audit = createAuditLog({
      db: store.db,
      dialect: store.dialect,
      keys: rootKeys,
      clock,
      flushMs: config.auditFlushMs,
      statement: (text, parameters) => store.read(text, parameters),
      logger,
    });
    if (options.background !== false) audit.start();
    let staff: StaffServices | undefined;
    const identity = createIdentityServices({
      config,
      db: store.db,
      clock,
      logger,
      audit,
      base: moduleBase('identity/v1'),
      blindIndex: rootKeys.blindIndex,
      standing: staffSignInStanding(() => staff),
    });
    staff = createStaffServices({
      db: store.db,
      clock,
      audit,
      accounts: identity.accounts,
      keys: deriveStaffKeys({ base: moduleBase('staff/v1') }),
      knownPurposes: inventory.purposes,
      invitationUrl: identity.links.staffInvitation,
      mailer: { send: async (m) => void (await identity.mailer.send(m)) },
      trainingValidityMonths: config.trainingValidityMonths,
    });
    if (options.background !== false) identity.start();
    let consent: ConsentModule | undefined;
    const policy = createPolicyService({ inventory, consent: consentGateFor(() => consent), guards: [customerSelfGuard, staff.guard] });
    const vault = createVaultService({
      db: store.db,
      dialect: store.dialect,
      read: store.read,
      ...(store.batch === undefined ? {} : { batch: store.batch }),
      keys,
      blindIndexKey: rootKeys.blindIndex,
      inventory,
      policy,
      audit,
      clock,
      phoneDefaultCountry: config.phoneDefaultCountry,
    });
    const processors = createProcessorService({ db: store.db, clock, audit, inventory, onChange: async () => void (await consent?.republish()) });
    consent = await openConsent({
      recipients: () => processors.list(),
      db: store.db,
      read: store.read,
      clock,
      audit,
      inventory,
      policy,
      subjects: createVaultSubjects({ db: store.db, read: store.read }),
      base: moduleBase('consent/v1'),
      issuer: config.publicUrl ?? 'custos',
      baseUrl: config.publicUrl ?? '',
      // A double opt-in confirmation goes to the customer's email, read for purpose account.
      async sendConfirmation(subjectId, purpose, url, requestId) {
        const customer = await vault.readCustomer({ actor: { ref: 'system:consent', kind: 'system', purposes: ['account'] }, purpose: 'account', requestId }, subjectId);
        if (typeof customer.email !== 'string') return;
        const text = `Please confirm that ${config.shopName} may use your data for: ${inventory.purposes.get(purpose)?.description ?? purpose}\n\n${url}\n\nIf you did not ask for this, ignore this mail: nothing happens without your confirmation.`;
        await identity.mailer.send({ to: customer.email, subject: `${config.shopName}: please confirm`, text });
      },
    });
    const apiKeys = createApiKeyService({
      db: store.db,
      store,
      database: config.database,
      hashKey: rootKeys.apiKeyHash,
      clock,
      onListenError: (error) => logger.warn({ code: (error as { code?: unknown }).code }, 'API key revocation listener lost its connection; keys are read from the database until it is back'),
    });
    let closed = false;
    return {
      config,
      store,
      rootKeys,
      keys,
      inventory,
      clock,
      logger,
      audit,
      apiKeys,
      policy,
      vault,
      identity,
      staff,
      consent,
      processors,
      async close() {
        if (closed) return;
        closed = true;
        await identity.close();
        await apiKeys.close();
        await audit.stop();
        await store.close();
      },
    };
  } catch (error) {
    await store.close();
    throw error;
  }
}
