/**
 * Detection at a glance (CONVENTIONS.md, module layout).
 *
 * Owns: tables detection_alerts, detection_activity, detection_sources, detection_origins (0028), detection_blocks,
 * detection_honeytokens, detection_state, and api_keys.suspended_at (migration 0016-detection;
 * tables.ts); the routes /v1/security/alerts, /v1/security/alerts/{id}, …/{id}/ack and
 * …/{id}/close (routes.ts) in the API-key scope of src/app.ts; the block check on every request
 * (blocks.ts, an onRequest hook of src/app.ts); `custos honeytoken plant` and `custos detection
 * blocks|unblock` (src/cli/commands/detection.ts); error codes DETECTION_* (errors.ts); the
 * `security` purpose of the default inventory (API keys that read alerts).
 *
 * How: every module's security-relevant decision reaches the in-process bus of
 * src/kernel/security-events.ts — audit entries through the audit log's observer with their
 * request's client address (feed.ts), sign-in results with the attempt key (identity), API-key
 * uses and refusals (src/http/auth.ts), refused relay targets (cards/relay.ts), failed audit
 * checks (`custos audit verify`). The engine (engine.ts) runs the rules (checks.ts, settings in
 * rules.ts) over batches of them off the request path, counting into sliding windows (windows.ts:
 * memory, or Redis with REDIS_URL) and hourly activity counters (activity.ts), and raises alerts
 * (alerts.ts), once per incident across processes; responses (responses.ts, ports.ts) suspend API keys, lock accounts,
 * require step-up and block sources; outputs (outputs.ts) hand alerts to the sinks of contracts.ts.
 *
 * Personal data it holds: client addresses (IPv6 by /64) of the actors seen from them (staff,
 * API keys, customers, card sessions) and of blocked sources, in tables pruned after the history
 * (30 days) or the block's end; the origins of card requests (request id → source), pruned after a
 * year (PCI DSS 10.2.2, 10.5.1) — never in the audit log; alert notes written by staff. Alerts name
 * actors by id (an API key also by name), never by email.
 *
 * Depends on: audit (the feed, and every alert and action audited), apikeys (suspend, names),
 * identity (lockout, sessions), staff (directory: members' accounts, incidents.manage), vault and
 * cards (planting decoys), store (Kysely; notify.ts on PostgreSQL), ioredis (shared windows).
 */
export const DETECTION_AUDIT_ACTIONS = [
  'security.alert_raised',
  'security.alert_acknowledged',
  'security.alert_closed',
  'security.apikey_suspended',
  'security.account_locked',
  'security.step_up_required',
  'security.source_blocked',
  'security.source_unblocked',
  'security.honeytokens_planted',
] as const;

/** The purpose an API key states scope to for reading and working security alerts. */
export const SECURITY_PURPOSE = 'security';
