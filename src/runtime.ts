import { ConfigError, type Config } from './config/config.ts';
import { createKeyStore, KeyError, type KeyStore } from './crypto/key-store.ts';
import { rotateKekAfterShreds } from './crypto/key-lifecycle.ts';
import { openBlindIndexKeys, type BlindIndexKeys } from './crypto/blind-index.ts';
import { createAlertSinks, createOcsfSink } from './modules/detection/outputs/index.ts';
import { sendRightsDigest } from './modules/rights/digest.ts';
import { KEYRING_FILE, RootKeyMissing, type RootRing } from './crypto/keyring.ts';
import { openRootRing } from './crypto/root-provider.ts';
import { createIdempotencyStore, type IdempotencyStore } from './http/idempotency.ts';
import { loadServiceKeys, moduleBase, ServiceKeyError, type ServiceKeySet } from './crypto/service-keys.ts';
import { systemClock, type Clock } from './kernel/clock.ts';
import { createLogger, type Logger } from './kernel/logger.ts';
import { createApiKeyService, type ApiKeyService } from './modules/apikeys/service.ts';
import { createAuditLog, type AuditLog } from './modules/audit/service.ts';
import { loadInventory, type Inventory } from './modules/inventory/index.ts';
import { createPolicyService, type PolicyService } from './modules/policy/service.ts';
import { runReseal } from './modules/vault/reseal.ts';
import { consentGateFor, openConsent } from './modules/consent/module.ts';
import type { ConsentModule } from './modules/consent/module.ts';
import { createProcessorService, type ProcessorService } from './modules/processors/service.ts';
import { createProcessorNotices, type ProcessorNotices } from './modules/processors/notices.ts';
import { createVaultSubjects } from './modules/vault/audience.ts';
import { createVaultService, type VaultService } from './modules/vault/service.ts';
import { Redis } from 'ioredis';
import { createCardKeys } from './modules/cards/keys.ts';
import { memoryCvvStore, redisCvvStore } from './modules/cards/cvv-store.ts';
import { CARDS_COLLECTION, createCardService, type CardService } from './modules/cards/service.ts';
import { createCardSessions, type CardSessions } from './modules/cards/sessions.ts';
import { createRightsService, type RightsService } from './modules/rights/service.ts';
import { createErasureService, identityAccountCloser, type ErasureService } from './modules/rights/erasure.ts';
import { createExportService, type ExportService } from './modules/rights/export.ts';
import { createExportLinks, exportLinkKeys } from './modules/rights/export-links.ts';
import { createRestrictionService, restrictionGateFor, type RestrictionService } from './modules/rights/restrictions.ts';
import { createShopErasures, type ShopErasures } from './modules/rights/shop-erasure.ts';
import { createShopifyWebhooks, type ShopifyWebhooks } from './modules/rights/shopify.ts';
import { createVaultErasure, type VaultErasure } from './modules/vault/erasure.ts';
import { createRetentionService, type RetentionService } from './modules/retention/service.ts';
import { customerSelfGuard } from './modules/identity/sessions/session-guard.ts';
import { createIdentityServices, type IdentityServices } from './modules/identity/sessions/session-runtime.ts';
import { staffSignInStanding } from './modules/identity/sessions/session-staff.ts';
import { deriveStaffKeys } from './modules/staff/keys.ts';
import { createStaffServices, type StaffServices } from './modules/staff/services.ts';
import { cardBrands } from './modules/cards/brands.ts';
import type { AlertLookup } from './modules/detection/contracts.ts';
import { deriveIncidentKey } from './modules/incidents/keys.ts';
import { keyFactsOf } from './modules/incidents/protection.ts';
import { createIncidentReminders, type IncidentReminders } from './modules/incidents/reminders.ts';
import { createIncidentService, type IncidentService } from './modules/incidents/service.ts';
import { migrate, openStore, type Store } from './store/database.ts';
import { createSecurityEvents, type SecurityEvents } from './kernel/security-events.ts';
import { createRequestSources, eventOfEntry } from './modules/detection/feed.ts';
import { loadRules, RulesError, type DetectionRules } from './modules/detection/rules.ts';
import { openDetection, type Detection } from './modules/detection/service.ts';
import { accountPorts } from './modules/detection/ports.ts';

/**
 * Everything a server process or a CLI command needs, wired once from the configuration: the
 * store, the key hierarchy, the inventory and the services. The HTTP app and the CLI are thin
 * layers over this.
 */
export interface Runtime {
  readonly config: Config;
  readonly store: Store;
  /** The service keys (current versions, and older versions where verification needs them). */
  readonly rootKeys: ServiceKeySet;
  /** The root keys of the configured provider (current, and previous during a root rotation). */
  readonly ring: RootRing;
  readonly keys: KeyStore;
  /** The blind-index key versions in force (one, or two while `keys rotate --key blind-index` rebuilds). */
  readonly blindIndex: BlindIndexKeys;
  readonly inventory: Inventory;
  readonly clock: Clock;
  readonly logger: Logger;
  readonly audit: AuditLog;
  readonly apiKeys: ApiKeyService;
  readonly policy: PolicyService;
  readonly vault: VaultService;
  readonly cards: CardService;
  /** Publishable keys for the card-collection page (POST /v1/cards/sessions). */
  readonly cardSessions: CardSessions;
  readonly identity: IdentityServices;
  readonly staff: StaffServices;
  readonly rights: RightsService;
  readonly erasure: ErasureService;
  /** Access and portability exports and their download links. */
  readonly exports: ExportService;
  /** Restrictions of processing (GDPR Art. 18); the policy asks them on every read. */
  readonly restrictions: RestrictionService;
  /** Shopify compliance webhooks, and the shop erasures they record. */
  readonly shopify: ShopifyWebhooks;
  readonly shopErasures: ShopErasures;
  readonly vaultErasure: VaultErasure;
  readonly retention: RetentionService;
  readonly idempotency: IdempotencyStore;
  readonly consent: ConsentModule;
  readonly processors: ProcessorService;
  /** Recipients told of erasures (GDPR Art. 19) by signed webhooks, retried, confirmed. */
  readonly processorNotices: ProcessorNotices;
  readonly incidents: IncidentService;
  readonly incidentReminders: IncidentReminders;
  /** Security events (one bus per runtime): what the modules decide, with the client address, for detection. */
  readonly events: SecurityEvents;
  readonly detection: Detection;
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
  // Validate the inventory before touching the database: a bad file stops start-up.
  const inventory = loadInventory(config.inventoryFile);
  let rules: DetectionRules;
  try {
    rules = loadRules(config.detection.rulesFile);
  } catch (error) {
    if (error instanceof RulesError) throw new ConfigError(error.message);
    throw error;
  }
  const events = createSecurityEvents((error) => logger.warn({ code: (error as { code?: unknown }).code }, 'a security event listener failed'));
  const requests = createRequestSources();
  const store = await openStore(config.database);
  let closeRing = () => undefined as void;
  try {
    if (options.migrate !== false) await migrate(store, (migration, report) => logger.info({ migration, ...report }, 'migration report'));
    const empty = (await store.db.selectFrom('keks').select('version').limit(1).executeTakeFirst()) === undefined;
    const opened = openRootRing(config, empty);
    closeRing = opened.close;
    const ring = opened.ring;
    if (config.root.kind === 'keyring' && options.background !== false) {
      logger.warn(
        { keyring: `${config.dataDir}/${KEYRING_FILE}` },
        'the root key lies in the keyring file beside the data it protects: a copy of the data folder holds both; set CUSTOS_ROOT_KEY_FILE, CUSTOS_ROOT_KEY or CUSTOS_PKCS11_MODULE for production (README "Keys and backups")',
      );
    }
    const keys = createKeyStore({
      db: store.db,
      ring,
      clock,
      store,
      database: config.database,
      onListenError: (error) => logger.warn({ code: (error as { code?: unknown }).code }, 'key change listener lost its connection; data keys are read from the database until it is back'),
    });
    let rootKeys: ServiceKeySet;
    let blindIndex: BlindIndexKeys;
    try {
      await keys.init();
      rootKeys = await loadServiceKeys(store.db, ring, clock);
      blindIndex = await openBlindIndexKeys({ db: store.db, ring, keys, dialect: store.dialect });
    } catch (error) {
      // A root that does not open this database's keys is a configuration error: it names the variable.
      if (error instanceof KeyError || error instanceof ServiceKeyError || error instanceof RootKeyMissing) throw new ConfigError(error.message);
      throw error;
    }
    const audit = createAuditLog({
      db: store.db,
      dialect: store.dialect,
      keys: rootKeys,
      clock,
      flushMs: config.auditFlushMs,
      heads: config.auditHeads,
      statement: (text, parameters) => store.read(text, parameters),
      logger,
      // Every entry is also a security event, with its request's client address (never logged);
      // with the rules off too, detection records sources and card origins from them.
      observe: (entry, context) => events.emit(eventOfEntry(entry, context, requests, clock.now())),
    });
    if (options.background !== false) audit.start();
    let staff: StaffServices | undefined;
    const identity = createIdentityServices({
      config,
      db: store.db,
      clock,
      logger,
      audit,
      base: moduleBase(rootKeys, 'identity'),
      blindIndex,
      standing: staffSignInStanding(() => staff),
    });
    staff = createStaffServices({
      db: store.db,
      clock,
      audit,
      accounts: identity.accounts,
      keys: deriveStaffKeys({ base: moduleBase(rootKeys, 'staff') }),
      knownPurposes: inventory.purposes,
      invitationUrl: identity.links.staffInvitation,
      mailer: { send: async (m) => void (await identity.mailer.send(m)) },
      trainingValidityMonths: config.trainingValidityMonths,
    });
    if (options.background !== false) identity.start();
    let consent: ConsentModule | undefined;
    let restrictions: RestrictionService | undefined;
    const policy = createPolicyService({
      inventory,
      consent: consentGateFor(() => consent),
      restriction: restrictionGateFor(() => restrictions),
      guards: [customerSelfGuard, staff.guard],
    });
    const vault = createVaultService({
      db: store.db,
      dialect: store.dialect,
      read: store.read,
      ...(store.batch === undefined ? {} : { batch: store.batch }),
      keys,
      blindIndex,
      inventory,
      policy,
      audit,
      clock,
      phoneDefaultCountry: config.phoneDefaultCountry,
    });
    const subjects = createVaultSubjects({ db: store.db, read: store.read });
    const processors = createProcessorService({ db: store.db, clock, audit, inventory, webhookKey: rootKeys.webhooks, onChange: async () => void (await consent?.republish()) });
    const processorNotices = createProcessorNotices({ db: store.db, clock, audit, webhookKey: rootKeys.webhooks, logger });
    if (options.background !== false) processorNotices.start();
    consent = await openConsent({
      recipients: () => processors.list(),
      db: store.db,
      read: store.read,
      clock,
      audit,
      inventory,
      policy,
      subjects,
      base: rootKeys.consentBase,
      receiptVersions: rootKeys.versions.get('receipts') ?? [],
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
    const redis = config.redisUrl === undefined ? undefined : new Redis(config.redisUrl.reveal(), { lazyConnect: false, maxRetriesPerRequest: 1 });
    const cvvs = redis === undefined ? memoryCvvStore(clock) : redisCvvStore(redis);
    const cards = createCardService({
      cvvs,
      db: store.db,
      keys: createCardKeys({ db: store.db, ring, clock, initial: rootKeys }),
      policy,
      audit,
      clock,
      collection: inventory.collections.get(CARDS_COLLECTION)!,
      deterministic: config.cardsDeterministic,
      graceDays: config.cardsExpiryGraceDays,
    });
    const cardSessions = createCardSessions({
      db: store.db,
      cards,
      audit,
      clock,
      hashKeys: (rootKeys.versions.get('api-key-hash') ?? []).map((v) => v.key),
      storefrontOrigins: config.storefrontOrigins,
    });
    const apiKeys = createApiKeyService({
      db: store.db,
      store,
      database: config.database,
      hashKey: rootKeys.apiKeyHash,
      previousHashKeys: (rootKeys.versions.get('api-key-hash') ?? []).slice(1).map((v) => v.key),
      clock,
      onListenError: (error) => logger.warn({ code: (error as { code?: unknown }).code }, 'API key revocation listener lost its connection; keys are read from the database until it is back'),
      onUseNoteError: (error) => logger.warn({ code: (error as { code?: unknown }).code }, 'an API key\'s last use could not be recorded; it is tried again at its next use'),
    });
    // Records still in the per-field format are sealed whole in the background (custos keys reseal).
    const resealing = new AbortController();
    const resealed = options.background === false ? Promise.resolve() : resealInBackground(vault, keys, store, logger, resealing.signal);
    const rights = createRightsService({
      db: store.db,
      clock,
      audit,
      subjects,
      jurisdiction: config.rights.jurisdiction,
      holidays: config.rights.holidays,
    });
    const vaultErasure = createVaultErasure({ db: store.db, keys, clock, policy, audit });
    const erasure = createErasureService({
      db: store.db,
      clock,
      audit,
      rights,
      vault: vaultErasure,
      subjects,
      inventory,
      bookkeepingCountry: config.rights.bookkeepingCountry,
      kekRotationAfterErasureDays: config.rights.kekRotationAfterErasureDays,
      signer: rootKeys.receiptSigning,
      accounts: identityAccountCloser(identity),
      processors: processorNotices,
      logger,
    });
    if (options.background !== false) erasure.start();
    const exports = createExportService({
      clock,
      audit,
      rights,
      links: createExportLinks({
        db: store.db,
        clock,
        keys: exportLinkKeys(rootKeys.versions.get('receipts') ?? []),
        ttlHours: config.rights.exportLinkHours,
        baseUrl: identity.links.publicUrl,
      }),
      vault,
      subjects,
      restriction: restrictionGateFor(() => restrictions),
      cards,
      consent,
      recipients: () => processors.list({ all: true }),
      inventory,
      controller: config.controller,
      shopName: config.shopName,
      mail: (message) => identity.mailer.send(message),
      logger,
    });
    restrictions = createRestrictionService({
      db: store.db,
      read: store.read,
      clock,
      audit,
      rights,
      inventory,
      vault,
      shopName: config.shopName,
      mail: (message) => identity.mailer.send(message),
      logger,
    });
    const shopErasures = createShopErasures({ db: store.db, clock, audit, rights, erasure, vault: vaultErasure, logger });
    const shopify = createShopifyWebhooks({
      db: store.db,
      clock,
      audit,
      secret: config.shopify.webhookSecret,
      shopDomain: config.shopify.shopDomain,
      rights,
      erasure,
      vault,
      shopErasures,
      logger,
    });
    const retention = createRetentionService({
      db: store.db,
      clock,
      audit,
      vault: vaultErasure,
      rights,
      identitySweep: () => identity.sweep(),
      backupShred: (dryRun) => rotateKekAfterShreds({ db: store.db, keys, clock }, config.rights.kekRotationAfterErasureDays, dryRun),
      daily: () => sendRightsDigest({ db: store.db, clock, rights, notifier: staff.notifier, audit }),
      onError: (error) => logger.warn({ code: (error as { code?: unknown }).code }, 'retention sweep failed'),
    });
    if (options.background !== false) retention.start();
    // Detection's alert store (opened below; asked only once requests run).
    const alerts: AlertLookup = { get: (id) => detection.get(id) };
    const incidentKey = deriveIncidentKey({ staffBase: moduleBase(rootKeys, 'staff') });
    const incidents = createIncidentService({
      db: store.db,
      dialect: store.dialect,
      clock,
      audit,
      inventory,
      directory: staff.directory,
      key: incidentKey,
      alerts,
      reports: staff.reports,
      keyFacts: async () => {
        const status = await keys.status();
        const kid = ring.current().kid;
        return keyFactsOf(config, { root_kid: kid, kek_version: status.current, keks_under_older_root: status.versions.filter((v) => v.root_kid !== kid).length });
      },
      cardBrands: (tokens) => cardBrands(store.db, tokens),
      // An incident scoped by a source address: the actors detection saw from it (it sees
      // request addresses only with its rules on: off, such a scope is refused).
      ...(config.detection.enabled ? { sources: (source: string, window: { from: string; to: string }) => detection.actorsFrom(source, window) } : {}),
      controller: { name: config.controller.name, address: config.controller.address, dpoContact: config.controller.dpoContact, privacyContact: config.controller.privacyContact },
    });
    const incidentReminders = createIncidentReminders({
      db: store.db,
      dialect: store.dialect,
      key: incidentKey,
      clock,
      audit,
      notifier: staff.notifier,
      onError: (error) => logger.warn({ code: (error as { code?: unknown }).code }, 'incident reminders failed'),
    });
    if (options.background !== false) incidentReminders.start();
    const detection = await openDetection({
      config,
      enabled: config.detection.enabled,
      rules,
      db: store.db,
      dialect: store.dialect,
      clock,
      logger,
      audit,
      events,
      requests,
      inventory,
      vault,
      cards,
      apiKeys,
      ports: accountPorts({ apiKeys, identity, staff }),
      sinks: createAlertSinks(config, { logger, clock }),
      ocsf: createOcsfSink(config, { logger, clock }),
      background: options.background !== false,
    });
    let closed = false;
    return {
      config,
      store,
      rootKeys,
      ring,
      keys,
      blindIndex,
      inventory,
      clock,
      logger,
      audit,
      apiKeys,
      policy,
      vault,
      cards,
      cardSessions,
      identity,
      staff,
      rights,
      erasure,
      exports,
      restrictions,
      shopify,
      shopErasures,
      vaultErasure,
      retention,
      idempotency: createIdempotencyStore({ db: store.db, clock, key: rootKeys.idempotency }),
      consent,
      processors,
      processorNotices,
      incidents,
      incidentReminders,
      events,
      detection,
      async close() {
        if (closed) return;
        closed = true;
        resealing.abort();
        await resealed;
        await retention.stop();
        await erasure.stop();
        await processorNotices.stop();
        await incidentReminders.stop();
        await detection.stop();
        await identity.close();
        await apiKeys.close();
        await audit.stop();
        cvvs.close();
        if (redis !== undefined) await redis.quit();
        await keys.close();
        await store.close();
        closeRing();
      },
    };
  } catch (error) {
    await store.close();
    closeRing();
    throw error;
  }
}

/** Re-seal batch size in the background, and the pause after each batch (SQLite: the server's own writes go first). */
const BACKGROUND_RESEAL = { batch: 200, giveWayMs: 20 };

async function resealInBackground(vault: VaultService, keys: KeyStore, store: Store, logger: Logger, signal: AbortSignal): Promise<void> {
  try {
    if (!(await vault.resealPending())) return;
    const report = await runReseal(vault, {
      ...BACKGROUND_RESEAL,
      giveWayMs: store.dialect === 'sqlite' ? BACKGROUND_RESEAL.giveWayMs : 0,
      target: (subjectId) => keys.dekFor(store.db, subjectId, false),
      signal,
    });
    if (report.resealed > 0 || report.failed.length > 0)
      logger.info({ resealed: report.resealed, failed: report.failed.length, complete: report.complete }, 'records re-sealed as envelopes');
    if (report.failed.length > 0) logger.warn({ records: report.failed }, 'records that failed their integrity check were left as they are');
  } catch (error) {
    if (!signal.aborted) logger.warn({ code: (error as { code?: unknown }).code }, 'the background re-seal stopped; `custos keys reseal` finishes it');
  }
}
