import type { Clock } from '../../kernel/clock.ts';
import type { Logger } from '../../kernel/logger.ts';
import type { SecurityEvent } from '../../kernel/security-events.ts';
import type { AuditLog } from '../audit/service.ts';
import type { Activity } from './activity.ts';
import type { AlertStore } from './alerts.ts';
import { createChecks, type Raised } from './checks.ts';
import type { AlertActor } from './contracts.ts';
import type { Honeytokens } from './honeytokens.ts';
import type { Outputs } from './outputs.ts';
import { DETECTION_ACTOR, type Responses } from './responses.ts';
import type { DetectionRules, RuleId } from './rules.ts';
import type { KnownSources, Origin, Sighting } from './sources.ts';
import type { WindowStore } from './windows.ts';

/**
 * The rule engine: takes the security events of one turn of the event loop as a batch (after the
 * requests that caused them have answered), runs the rules of checks.ts over it (counting into the
 * sliding windows — one Redis pipeline per batch when shared — and the hourly activity counters),
 * and raises what crosses a rule. Each alert is raised once per incident (alerts.ts); only the process that stored it runs
 * its responses (an audit entry for each) and hands it to the outputs. During the learning period
 * an alert that rests on learned figures (usual rates, hours, sources) takes no action.
 *
 * Before the rules, and with the rules off too, each batch records which actor was seen from which
 * source (detection_sources: an incident scoped by a source finds its actors there) and the origin
 * of each card request (detection_origins, PCI DSS 10.2.2): the audit log holds neither address.
 * With the rules off the server does not note request addresses (src/app.ts), so only events that
 * carry their source — card events (cards/service.ts, `cardOrigin`) — are recorded.
 */
export interface EngineDeps {
  /** The rules run (CUSTOS_DETECTION); off, the engine only records sources and card origins. */
  readonly enabled: boolean;
  readonly clock: Clock;
  readonly logger?: Logger | undefined;
  readonly rules: DetectionRules;
  readonly windows: WindowStore;
  readonly activity: Activity;
  readonly alerts: AlertStore;
  readonly honeytokens: Honeytokens;
  readonly sources: KnownSources;
  readonly responses: Responses;
  readonly outputs: Outputs;
  readonly audit: Pick<AuditLog, 'append'>;
  /** End of the learning period (epoch ms). */
  readonly learningUntil: number;
  /** An API key's name, for alerts that name it. */
  readonly keyName: (id: string) => Promise<string | null>;
}

export interface Engine {
  process(events: readonly SecurityEvent[]): Promise<void>;
  /** Writes what is held in memory: activity counters, alerts extended since their last write. */
  flush(): Promise<void>;
}

/** Actors whose sources are recorded: people and credentials (`staff:`, `apikey:`, `customer:`, `account:`, `card_session:`), not the system's jobs. */
const seenActor = (ref: string | null | undefined): ref is string => ref !== null && ref !== undefined && ref.indexOf(':') > 0 && !ref.startsWith('system');

/** Card request origins written at once when this many wait (else at the next flush). */
const ORIGIN_BATCH = 500;

/** An alert extended by this process is written at most this often (and at flush). */
const EXTEND_WRITE_MS = 5000;

export function createEngine(deps: EngineDeps): Engine {
  const { clock, rules, activity, alerts, responses, outputs, logger } = deps;
  const r = rules.rules;
  const checks = createChecks({ rules, windows: deps.windows, activity, honeytokens: deps.honeytokens });
  /** Incidents this process raised or saw: id, figure and when last written. */
  const current = new Map<string, { id: string; lastSeen: number; windowMs: number; count: number; merge: 'max' | 'sum'; dirty: boolean; writtenAt: number }>();

  async function named(actor: AlertActor): Promise<AlertActor> {
    return actor.kind === 'apikey' ? { ...actor, name: await deps.keyName(actor.id) } : { ...actor, name: actor.name ?? null };
  }

  async function raise(c: Raised): Promise<void> {
    const settings = r[c.rule as RuleId];
    const key = `${c.rule}|${c.incident}`;
    const now = c.at.getTime();
    const known = current.get(key);
    if (known !== undefined && now - known.lastSeen <= c.windowMs) {
      known.lastSeen = Math.max(known.lastSeen, now);
      known.count = c.merge === 'sum' ? known.count + c.count : Math.max(known.count, c.count);
      known.dirty = true;
      if (now - known.writtenAt >= EXTEND_WRITE_MS) await writeExtension(known, now);
      return;
    }
    const { alert, created } = await alerts.raise({ ...c, actor: c.actor === null ? null : await named(c.actor) });
    current.set(key, { id: alert.id, lastSeen: now, windowMs: c.windowMs, count: alert.count, merge: c.merge, dirty: false, writtenAt: now });
    if (!created) return;
    // Not into a log just found altered: an entry appended after a cut could land on the cut (the alert is the record).
    if (c.rule !== 'audit_tamper')
      await deps.audit.append({
        actor: DETECTION_ACTOR,
        action: 'security.alert_raised',
        collection: 'detection_alerts',
        recordId: alert.id,
        fields: [`rule.${c.rule}`, `severity.${c.severity}`],
        outcome: 'success',
      });
    const quiet = settings.alert_only || (c.learned && now < deps.learningUntil);
    const taken = quiet ? [] : await responses.run(settings.responses, alert, settings.block_for, c.attemptKey);
    const final = taken.length === 0 ? alert : await alerts.setActions(alert.id, taken);
    outputs.alert(final, settings.responses.includes('alert'));
  }

  async function writeExtension(known: { id: string; count: number; merge: 'max' | 'sum'; lastSeen: number; dirty: boolean; writtenAt: number }, now: number) {
    known.dirty = false;
    known.writtenAt = now;
    // A sum is written as the whole figure: the row holds what this process counted so far.
    await alerts.extend(known.id, known.count, 'max', new Date(known.lastSeen));
  }


  /**
   * Card request origins not yet written: written with the counters (flush, every five seconds in
   * a server, and at stop) or once ORIGIN_BATCH wait, so a card request costs no write of its own
   * (on SQLite every write takes the one write lock the audit log's commits need too).
   */
  let origins = new Map<string, Origin>();
  async function writeOrigins(): Promise<void> {
    if (origins.size === 0) return;
    const batch = [...origins.values()];
    origins = new Map();
    await deps.sources.recordOrigins(batch);
  }

  /** Sightings of actor and source, and card request origins, of one batch; the sightings by `actor|source`. */
  async function record(events: readonly SecurityEvent[]): Promise<Map<string, Sighting>> {
    const pairs = new Map<string, { actor: string; source: string; at: Date }>();
    for (const e of events) {
      if (typeof e.source !== 'string' || e.source === '') continue;
      if (seenActor(e.actor)) {
        const key = `${e.actor}|${e.source}`;
        if (!pairs.has(key)) pairs.set(key, { actor: e.actor, source: e.source, at: e.at });
      }
      if (e.action.startsWith('cards.') && typeof e.requestId === 'string' && !origins.has(e.requestId))
        origins.set(e.requestId, { request_id: e.requestId, source: e.source, actor: e.actor ?? null, at: e.at.toISOString() });
    }
    const sightings = new Map<string, Sighting>();
    try {
      for (const [key, p] of pairs) sightings.set(key, await deps.sources.seen(p.actor, p.source, p.at));
      if (origins.size >= ORIGIN_BATCH) await writeOrigins();
    } catch (error) {
      logger?.error({ code: (error as { code?: unknown }).code }, 'detection could not record sources of this batch');
    }
    return sightings;
  }

  return {
    async process(events) {
      const sightings = await record(events);
      if (!deps.enabled) return;
      const now = clock.now();
      const raised: Raised[] = [];
      const staff = new Map<string, SecurityEvent>();
      for (const e of events) {
        outputs.event(e);
        checks.learn(e);
        const c = checks.single(e);
        if (c !== undefined) raised.push(c);
        // One look per staff member and source in a batch is enough for the hour and source rules.
        if (e.actor?.startsWith('staff:') === true) staff.set(`${e.actor}|${e.source ?? ''}`, e);
      }
      raised.push(...(await checks.windowed(events, now)));
      for (const [key, e] of staff) raised.push(...(await checks.ofStaff(e, sightings.get(key))));
      for (const c of raised) {
        try {
          await raise(c);
        } catch (error) {
          logger?.error({ rule: c.rule, code: (error as { code?: unknown }).code }, 'a detection alert could not be raised');
        }
      }
    },

    async flush() {
      await writeOrigins();
      const now = clock.now().getTime();
      for (const [key, known] of current) {
        if (known.dirty) await writeExtension(known, now);
        if (now - known.lastSeen > known.windowMs) current.delete(key);
      }
      await activity.flush();
    },
  };
}
