import { randomBytes } from 'node:crypto';
import { Redis } from 'ioredis';
import type { Kysely } from 'kysely';
import type { Config } from '../../config/config.ts';
import type { Clock } from '../../kernel/clock.ts';
import type { Logger } from '../../kernel/logger.ts';
import type { SecurityEvents } from '../../kernel/security-events.ts';
import type { Dialect } from '../../store/database.ts';
import { watchChannel, type ChannelWatch } from '../../store/notify.ts';
import type { Database } from '../../store/schema.ts';
import type { ApiKeyService } from '../apikeys/service.ts';
import type { AuditLog } from '../audit/service.ts';
import type { CardService } from '../cards/service.ts';
import type { Inventory } from '../inventory/index.ts';
import type { VaultService } from '../vault/service.ts';
import { createActivity } from './activity.ts';
import { createAlertStore, type AlertPage } from './alerts.ts';
import { createSourceBlocks, type SourceBlocks } from './blocks.ts';
import type { Alert, AlertLookup, AlertSink, AlertStatus, OcsfSink } from './contracts.ts';
import { createEngine } from './engine.ts';
import type { RequestSources } from './feed.ts';
import { createHoneytokens, type Honeytokens } from './honeytokens.ts';
import { createOutputs } from './outputs.ts';
import { createResponses, type AccountPorts } from './responses.ts';
import type { DetectionRules } from './rules.ts';
import { createKnownSources, type KnownSources } from './sources.ts';
import { DETECTION_CHANNEL, generation, stateValue } from './state.ts';
import { memoryWindows, redisWindows } from './windows.ts';

/**
 * Detection wired for one process: the engine listens to the security events (when enabled), the
 * alerts are listed, acknowledged and closed here (each audited), blocks are checked on every
 * request, honeytokens are planted. In a server (`background`), timers write the activity
 * counters and alert extensions every five seconds, look at the shared generation every two
 * (reloading blocks and honeytokens when it moved; at once on a PostgreSQL notification) and prune
 * the counters, sources and ended blocks a minute after start and then every hour.
 */
export interface Detection extends AlertLookup {
  readonly enabled: boolean;
  readonly rules: DetectionRules;
  readonly requests: RequestSources;
  /** `check` on every request; `block` by the responses; listing. */
  readonly blocks: Pick<SourceBlocks, 'check' | 'list'>;
  /** Plants decoys (audited as `security.honeytokens_planted` with their counts, never their ids). */
  readonly honeytokens: Pick<Honeytokens, 'plant'>;
  /** The actors seen from a source within a window (an incident's blast radius by source), or since when sources are kept. */
  actorsFrom: KnownSources['actorsFrom'];
  /** The origins (source, actor, time) of card requests by the request ids their audit entries carry (PCI DSS 10.2.2). */
  originsOf: KnownSources['originsOf'];
  /** Whether this API key id is a planted decoy: as of the last reload (at start, after a plant, and when the shared generation moves). */
  isDecoyApiKey(id: string): boolean;
  /** Lifts a block (audited as `security.source_unblocked`, named by its alert, never by the address). */
  unblock(source: string, by: string): Promise<boolean>;
  list(filter: { status?: AlertStatus | undefined; rule?: string | undefined; limit: number; before?: string | undefined }): Promise<AlertPage>;
  acknowledge(id: string, by: string, note: string | undefined, requestId?: string): Promise<Alert>;
  close(id: string, by: string, note: string, requestId?: string): Promise<Alert>;
  /** Processes every event emitted so far and writes what is held in memory (tests, shutdown). */
  settle(): Promise<void>;
  /** Looks at the shared generation now, reloading blocks and honeytokens if it moved. */
  sync(): Promise<void>;
  stop(): Promise<void>;
}

export interface DetectionDeps {
  readonly config: Pick<Config, 'database' | 'redisUrl'>;
  readonly enabled: boolean;
  readonly rules: DetectionRules;
  readonly db: Kysely<Database>;
  readonly dialect: Dialect;
  readonly clock: Clock;
  readonly logger?: Logger | undefined;
  readonly audit: AuditLog;
  readonly events: SecurityEvents;
  readonly requests: RequestSources;
  readonly inventory: Inventory;
  readonly vault: Pick<VaultService, 'create'>;
  readonly cards: Pick<CardService, 'tokenise'>;
  readonly apiKeys: Pick<ApiKeyService, 'create' | 'get'>;
  readonly ports: AccountPorts;
  readonly sinks: readonly AlertSink[];
  readonly ocsf?: OcsfSink | undefined;
  /** Timers and the PostgreSQL LISTEN (servers); the CLI settles on stop instead. */
  readonly background: boolean;
}

const FLUSH_MS = 5000;
const SYNC_MS = 2000;
const PRUNE_MS = 3_600_000;

export async function openDetection(deps: DetectionDeps): Promise<Detection> {
  const { db, dialect, clock, logger, audit, events, rules } = deps;
  const now = clock.now();
  const learningStart = Date.parse(await stateValue(db, 'learning_started_at', now.toISOString()));
  const installation = await stateValue(db, 'installation', randomBytes(9).toString('base64url'));
  const redis = deps.config.redisUrl === undefined || !deps.enabled ? undefined : new Redis(deps.config.redisUrl.reveal(), { lazyConnect: false, maxRetriesPerRequest: 1 });
  const windows = redis === undefined ? memoryWindows() : redisWindows(redis, `custos:detection:${installation}:`);
  const activity = createActivity({ db, clock, historyMs: rules.history });
  const alerts = createAlertStore({ db, clock });
  const blocks = createSourceBlocks({ db, dialect, clock });
  const honeytokens = createHoneytokens({ db, dialect, clock, inventory: deps.inventory, vault: deps.vault, cards: deps.cards, apiKeys: deps.apiKeys });
  const outputs = createOutputs({ sinks: deps.sinks, ocsf: deps.ocsf, logger });
  const responses = createResponses({ ports: deps.ports, blocks, audit, logger, now: () => clock.now() });
  const sources = createKnownSources({ db, clock, historyMs: rules.history });
  const names = new Map<string, string | null>();
  const engine = createEngine({
    enabled: deps.enabled,
    clock,
    logger,
    rules,
    windows,
    activity,
    alerts,
    honeytokens,
    sources,
    responses,
    outputs,
    audit,
    learningUntil: learningStart + rules.learning_period,
    async keyName(id) {
      if (!names.has(id)) names.set(id, (await deps.apiKeys.get(id))?.name ?? null);
      return names.get(id) ?? null;
    },
  });

  let seenGeneration = await generation(db);
  await Promise.all([blocks.reload(), honeytokens.reload()]);
  let syncing: Promise<void> | undefined;
  async function sync(): Promise<void> {
    syncing ??= (async () => {
      const g = await generation(db);
      if (g === seenGeneration) return;
      seenGeneration = g;
      await Promise.all([blocks.reload(), honeytokens.reload()]);
    })().finally(() => {
      syncing = undefined;
    });
    return syncing;
  }

  // With the rules off the engine still records sources and card origins (engine.ts).
  const off = events.on((batch) => engine.process(batch));
  const timers: NodeJS.Timeout[] = [];
  let watch: ChannelWatch | undefined;
  const quietly = (what: string, run: () => Promise<unknown>) => () =>
    void run().catch((error: unknown) => logger?.warn({ code: (error as { code?: unknown }).code }, `detection ${what} failed`));
  if (deps.background) {
    for (const [ms, what, run] of [
      [FLUSH_MS, 'flush', () => engine.flush()],
      [SYNC_MS, 'sync', sync],
      [PRUNE_MS, 'prune', () => Promise.all([activity.prune(), sources.prune(), blocks.prune()])],
    ] as const) {
      const timer = setInterval(quietly(what, run), ms);
      timer.unref();
      timers.push(timer);
    }
    // A first prune a minute after start, so that a server restarted more often than hourly still prunes.
    const first = setTimeout(quietly('prune', () => Promise.all([activity.prune(), sources.prune(), blocks.prune()])), 60_000);
    first.unref();
    timers.push(first);
    if (deps.config.database.kind === 'postgres' && dialect === 'postgres')
      watch = watchChannel(deps.config.database, DETECTION_CHANNEL, quietly('reload', async () => {
        seenGeneration = undefined;
        await sync();
      }), (error) => logger?.warn({ code: (error as { code?: unknown }).code }, 'detection listener lost its connection; blocks and honeytokens are reloaded every two seconds until it is back'));
  }

  async function settle(): Promise<void> {
    await events.flush();
    await engine.flush();
  }

  const record = (by: string, action: string, id: string, requestId: string | undefined) =>
    audit.append({ actor: by, action: `security.${action}`, collection: 'detection_alerts', recordId: id, fields: [], outcome: 'success', requestId: requestId ?? null });

  return {
    enabled: deps.enabled,
    rules,
    requests: deps.requests,
    blocks,
    honeytokens: {
      async plant(input) {
        const planted = await honeytokens.plant(input);
        await audit.append({
          actor: 'cli',
          action: 'security.honeytokens_planted',
          fields: [`customers.${planted.customers.length}`, `cards.${planted.cards.length}`, 'api_keys.1'],
          outcome: 'success',
        });
        return planted;
      },
    },
    isDecoyApiKey: (id) => honeytokens.isDecoyApiKey(id),
    actorsFrom: (source, window) => sources.actorsFrom(source, window),
    originsOf: (ids) => sources.originsOf(ids),
    async unblock(source, by) {
      const block = (await blocks.list()).find((b) => b.source === source);
      if (block === undefined || !(await blocks.unblock(source))) return false;
      await audit.append({ actor: by, action: 'security.source_unblocked', collection: 'detection_blocks', recordId: block.alert_id ?? 'manual', fields: [], outcome: 'success' });
      return true;
    },
    get: (id) => alerts.get(id),
    list: (filter) => alerts.list(filter),
    async acknowledge(id, by, note, requestId) {
      const { alert, changed } = await alerts.acknowledge(id, by, note);
      if (changed) await record(by, 'alert_acknowledged', id, requestId);
      return alert;
    },
    async close(id, by, note, requestId) {
      const alert = await alerts.close(id, by, note);
      await record(by, 'alert_closed', id, requestId);
      return alert;
    },
    settle,
    sync,
    async stop() {
      for (const t of timers) clearTimeout(t);
      await settle().catch((error: unknown) => logger?.warn({ code: (error as { code?: unknown }).code }, 'detection could not write its last counters'));
      off();
      await watch?.close();
      await outputs.close();
      await windows.close();
      if (redis !== undefined) await redis.quit().catch(() => undefined);
    },
  };
}
