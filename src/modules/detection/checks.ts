import type { SecurityEvent } from '../../kernel/security-events.ts';
import type { Activity } from './activity.ts';
import type { Candidate } from './alerts.ts';
import type { AlertActor } from './contracts.ts';
import type { Honeytokens } from './honeytokens.ts';
import { DETECTION_ACTOR } from './responses.ts';
import type { DetectionRules, RuleId } from './rules.ts';
import type { Sighting } from './sources.ts';
import type { WindowOp, WindowStore } from './windows.ts';

/**
 * The rules themselves: what each looks at in a batch of security events and when it has a
 * candidate alert. Window rules (brute force, credential stuffing, bulk reads) count the batch
 * into the sliding windows and compare the figures with their limits; single-event rules
 * (honeytokens, relays off the allow-list, a failed audit check) need one event; the staff rules
 * (off hours, new source) compare an event with what was learned. `learn` adds every event to the
 * hourly activity counters.
 */
export interface Checks {
  windowed(events: readonly SecurityEvent[], now: Date): Promise<Raised[]>;
  single(e: SecurityEvent): Raised | undefined;
  /** `sighting`: what recording the event's actor and source found (engine.ts), undefined without a source. */
  ofStaff(e: SecurityEvent, sighting: Sighting | undefined): Promise<Raised[]>;
  learn(e: SecurityEvent): void;
}

export type Raised = Candidate & { readonly learned: boolean; readonly attemptKey?: string | undefined };

const READS = new Set(['vault.read', 'vault.lookup', 'cards.read', 'cards.reveal']);
const LOGIN_FAIL = 'identity.authn_login_fail';
const LOGIN_OK = new Set(['identity.authn_login_success', 'identity.authn_login_successafterfail']);
const DAY_MS = 86_400_000;
const HOUR_MS = 3_600_000;

/** The system's own jobs and the CLI: never a honeytoken toucher, never learned. */
const exemptActor = (ref: string | null | undefined) => ref === 'cli' || ref === 'system' || ref?.startsWith('system:') === true;

/** The alert actor of an audit actor ref; undefined for refs no rule is about. */
function alertActorOf(ref: string | null | undefined): AlertActor | undefined {
  if (ref === null || ref === undefined) return undefined;
  const colon = ref.indexOf(':');
  const kind = ref.slice(0, colon);
  const id = ref.slice(colon + 1);
  if (colon < 0 || id === '') return undefined;
  if (kind === 'apikey' || kind === 'staff' || kind === 'customer' || kind === 'account') return { kind, id };
  return undefined;
}

const isPerson = (ref: string | null | undefined): ref is string => ref?.startsWith('staff:') === true || ref?.startsWith('apikey:') === true;
const text = (v: unknown) => (typeof v === 'string' ? v : undefined);

export function createChecks(deps: { rules: DetectionRules; windows: WindowStore; activity: Activity; honeytokens: Honeytokens }): Checks {
  const { rules, windows, activity, honeytokens } = deps;
  const r = rules.rules;

  function candidate(rule: RuleId, windowMs: number, fields: Omit<Raised, 'rule' | 'severity' | 'windowMs'>): Raised | undefined {
    const settings = r[rule];
    if (!settings.enabled) return undefined;
    return { ...fields, rule, severity: settings.severity, windowMs };
  }


  /** Brute force, credential stuffing and bulk reads: window figures, then the thresholds. */
  async function windowed(events: readonly SecurityEvent[], now: Date): Promise<Raised[]> {
    const failuresByAccount = new Map<string, { n: number; actor: string | null; source: string | null }>();
    const accountsBySource = new Map<string, Set<string>>();
    const readsByActor = new Map<string, { members: Set<string>; source: string | null }>();
    let attempts = 0;
    let failures = 0;
    for (const e of events) {
      if (e.action === LOGIN_FAIL) {
        attempts += 1;
        failures += 1;
        const key = text(e.detail?.account_key);
        if (key === undefined) continue;
        const f = failuresByAccount.get(key) ?? { n: 0, actor: null, source: null };
        f.n += 1;
        f.actor = e.actor === 'anonymous' ? f.actor : (e.actor ?? f.actor);
        f.source = e.source ?? f.source;
        failuresByAccount.set(key, f);
        if (e.source !== null && e.source !== undefined) {
          const set = accountsBySource.get(e.source) ?? new Set<string>();
          set.add(key);
          accountsBySource.set(e.source, set);
        }
      } else if (LOGIN_OK.has(e.action)) attempts += 1;
      else if (READS.has(e.action) && e.outcome === 'success' && isPerson(e.actor) && typeof e.subjectId === 'string') {
        const reads = readsByActor.get(e.actor) ?? { members: new Set<string>(), source: null };
        reads.members.add(e.subjectId);
        reads.source = e.source ?? reads.source;
        readsByActor.set(e.actor, reads);
      }
    }
    const ops: WindowOp[] = [];
    const checks: ((figure: number) => Promise<Raised | undefined> | Raised | undefined)[] = [];
    const at = now;
    if (r.brute_force.enabled)
      for (const [key, f] of failuresByAccount) {
        ops.push({ kind: 'count', key: `bf:${key}`, windowMs: r.brute_force.window, n: f.n });
        checks.push((n) => {
          if (n < r.brute_force.threshold) return undefined;
          const actor = alertActorOf(f.actor) ?? null;
          return candidate('brute_force', r.brute_force.window, {
            title: `Failed sign-ins on one account: ${n} within ${r.brute_force.window / 60_000} minutes`,
            actor,
            source: f.source,
            incident: key,
            count: n,
            merge: 'max',
            detail: { failures: n, window_minutes: r.brute_force.window / 60_000, account_known: actor !== null },
            at,
            learned: false,
            attemptKey: key,
          });
        });
      }
    if (r.credential_stuffing.enabled) {
      const cs = r.credential_stuffing;
      for (const [source, keys] of accountsBySource) {
        ops.push({ kind: 'distinct', key: `cs:${source}`, windowMs: cs.window, members: [...keys] });
        checks.push((n) =>
          n < cs.accounts
            ? undefined
            : candidate('credential_stuffing', cs.window, {
                title: `Credential stuffing: sign-ins failed on ${n} accounts from one source within ${cs.window / 60_000} minutes`,
                actor: { kind: 'source', id: source },
                source,
                incident: source,
                count: n,
                merge: 'max',
                detail: { trigger: 'accounts_per_source', accounts: n, window_minutes: cs.window / 60_000 },
                at,
                learned: false,
              }),
        );
      }
      if (attempts > 0) {
        ops.push({ kind: 'count', key: 'signin:all', windowMs: cs.window, n: attempts });
        ops.push({ kind: 'count', key: 'signin:fail', windowMs: cs.window, n: failures });
        let all = 0;
        checks.push((n) => void (all = n));
        checks.push(async (failed) => {
          if (all < cs.ratio_min_attempts) return undefined;
          const usual = (await activity.profile('@signin')).totals;
          const baseline = usual.signin > 0 ? usual.signin_fail / usual.signin : 0;
          const limit = Math.max(cs.ratio_floor, Math.min(1, cs.ratio_factor * baseline));
          const ratio = failed / all;
          if (ratio < limit) return undefined;
          return candidate('credential_stuffing', cs.window, {
            title: `Sign-in failure ratio jumped to ${Math.round(ratio * 100)} % over ${all} attempts`,
            actor: { kind: 'system', id: 'signin' },
            source: null,
            incident: 'failure_ratio',
            count: failed,
            merge: 'max',
            detail: { trigger: 'failure_ratio', attempts: all, failures: failed, ratio: Math.round(ratio * 1000) / 1000, usual_ratio: Math.round(baseline * 1000) / 1000 },
            at,
            learned: limit > cs.ratio_floor,
          });
        });
      }
    }
    if (r.bulk_read.enabled) {
      const br = r.bulk_read;
      for (const [actor, reads] of readsByActor) {
        ops.push({ kind: 'distinct', key: `br:${actor}`, windowMs: br.window, members: [...reads.members] });
        checks.push(async (n) => {
          if (n <= Math.min(br.threshold, br.min_count)) return undefined;
          const profile = await activity.profile(actor);
          const learned = profile.activeDays >= rules.min_history_days;
          const limit = learned ? Math.max(br.min_count, Math.ceil((br.factor * profile.peakReads * br.window) / HOUR_MS)) : br.threshold;
          if (n <= limit) return undefined;
          return candidate('bulk_read', br.window, {
            title: `Bulk read: ${n} customers within ${br.window / 60_000} minutes`,
            actor: alertActorOf(actor) ?? null,
            source: reads.source,
            incident: actor,
            count: n,
            merge: 'max',
            detail: { customers: n, limit, window_minutes: br.window / 60_000, learned, usual_peak_per_hour: profile.peakReads },
            at,
            learned,
          });
        });
      }
    }
    if (ops.length === 0) return [];
    const figures = await windows.apply(ops, now.getTime());
    const out: Raised[] = [];
    for (const [i, check] of checks.entries()) {
      const c = await check(figures[i]!);
      if (c !== undefined) out.push(c);
    }
    return out;
  }

  /** Honeytokens, relays off the allow-list, a failed audit check: one event is enough. */
  function single(e: SecurityEvent): Raised | undefined {
    if (e.action === 'cards.relay_refused')
      return candidate('relay_off_allowlist', HOUR_MS, {
        title: 'Card relay to a target off the allow-list',
        actor: alertActorOf(e.actor) ?? null,
        source: e.source ?? null,
        incident: `${e.actor ?? ''}|${text(e.detail?.target) ?? ''}`,
        count: 1,
        merge: 'sum',
        detail: { target: text(e.detail?.target) ?? null },
        at: e.at,
        learned: false,
      });
    if (e.action === 'audit.verify_failed')
      return candidate('audit_tamper', DAY_MS, {
        title: 'The audit log failed its verification',
        actor: null,
        source: null,
        incident: text(e.detail?.check) ?? 'audit',
        count: 1,
        merge: 'sum',
        detail: { check: text(e.detail?.check) ?? null, reason: text(e.detail?.reason) ?? null },
        at: e.at,
        learned: false,
      });
    if (exemptActor(e.actor) || e.actor === DETECTION_ACTOR) return undefined;
    const touched = honeytokens.match(e);
    if (touched === undefined) return undefined;
    return candidate('honeytoken', HOUR_MS, {
      title: `Honeytoken touched: decoy ${touched.kind} (${e.action})`,
      actor: alertActorOf(e.actor) ?? (e.source === null || e.source === undefined ? null : { kind: 'source', id: e.source }),
      source: e.source ?? null,
      incident: `${touched.ref}|${e.actor ?? e.source ?? ''}`,
      count: 1,
      merge: 'sum',
      detail: { honeytoken_kind: touched.kind, honeytoken: touched.ref, action: e.action, outcome: e.outcome },
      at: e.at,
      learned: false,
    });
  }

  /** Off-hours access and new sources of staff members: they rest on what was learned. */
  async function ofStaff(e: SecurityEvent, sighting: Sighting | undefined): Promise<Raised[]> {
    const actor = e.actor!;
    const out: Raised[] = [];
    if (r.new_source.enabled && typeof e.source === 'string' && sighting === 'new') {
      const c = candidate('new_source', DAY_MS, {
        title: 'Staff account used from a new source',
        actor: alertActorOf(actor) ?? null,
        source: e.source,
        incident: `${actor}|${e.source}`,
        count: 1,
        merge: 'sum',
        detail: { action: e.action },
        at: e.at,
        learned: true,
      });
      if (c !== undefined) out.push(c);
    }
    if (r.off_hours.enabled) {
      const profile = await activity.profile(actor);
      const h = e.at.getUTCHours();
      const usual = profile.byHourOfDay[(h + 23) % 24]! + profile.byHourOfDay[h]! + profile.byHourOfDay[(h + 1) % 24]!;
      if (profile.activeDays >= rules.min_history_days && usual === 0) {
        const c = candidate('off_hours', DAY_MS, {
          title: `Staff access outside usual hours (${String(h).padStart(2, '0')}:00 UTC)`,
          actor: alertActorOf(actor) ?? null,
          source: e.source ?? null,
          incident: `${actor}|${e.at.toISOString().slice(0, 10)}`,
          count: 1,
          merge: 'sum',
          detail: { hour_utc: h, active_days: profile.activeDays },
          at: e.at,
          learned: true,
        });
        if (c !== undefined) out.push(c);
      }
    }
    return out;
  }

  function learn(e: SecurityEvent): void {
    if (e.action === LOGIN_FAIL || LOGIN_OK.has(e.action)) {
      activity.add('@signin', 'signin', e.at);
      if (e.action === LOGIN_FAIL) activity.add('@signin', 'signin_fail', e.at);
      return;
    }
    if (!isPerson(e.actor)) return;
    activity.add(e.actor, 'events', e.at);
    if (READS.has(e.action) && e.outcome === 'success' && typeof e.subjectId === 'string') activity.add(e.actor, 'reads', e.at);
  }
  return { windowed, single, ofStaff, learn };
}
