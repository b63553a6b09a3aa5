/** Detection's tables (migration 0016-detection). */
export interface DetectionTables {
  /**
   * One row per incident of a rule: `incident_key` is the rule and what it is about (actor,
   * source, honeytoken); an incident seen again within its window extends its alert;
   * `dedupe_key` (the incident and its window) is unique, so two processes store it once.
   */
  detection_alerts: {
    id: string;
    rule: string;
    severity: string;
    status: string;
    title: string;
    actor_kind: string | null;
    actor_id: string | null;
    actor_name: string | null;
    source: string | null;
    count: number;
    /** JSON object of non-personal figures. */
    detail: string;
    /** JSON array of the response actions taken. */
    actions: string;
    incident_key: string;
    dedupe_key: string;
    first_seen: string;
    last_seen: string;
    acknowledged_by: string | null;
    acknowledged_at: string | null;
    closed_by: string | null;
    closed_at: string | null;
    note: string | null;
  };
  /**
   * Hourly counters per actor (`staff:…`, `apikey:…`, or `@signin` for the whole service): the
   * learned usual rates and hours, kept 30 days. `counter` is `events`, `reads` (distinct reads
   * of a customer's data), `signin` (sign-in attempts) or `signin_fail`; `hour` is `YYYY-MM-DDTHH` (UTC).
   */
  detection_activity: { actor: string; hour: string; counter: string; n: number };
  /**
   * Sources (client address, IPv6 by /64) each actor — staff member, API key, customer, card
   * session — was seen from; pruned after 30 days unseen (migration 0028 indexes it by source).
   */
  detection_sources: { actor: string; source: string; first_seen: string; last_seen: string };
  /**
   * The origin of each card request (PCI DSS 10.2.2): the request id its audit entries carry, the
   * source and actor; pruned after a year (10.5.1). Migration 0028.
   */
  detection_origins: { request_id: string; source: string; actor: string | null; at: string };
  /** Sources refused until `until` by a rule's `block_source` response; pruned once expired. */
  detection_blocks: { source: string; until: string; alert_id: string | null; created_at: string };
  /** Planted decoys: kind `customer` (vault id), `card` (card token) or `apikey` (key id). */
  detection_honeytokens: { kind: string; ref: string; created_at: string };
  /** Named values: `learning_started_at`, `generation` (blocks and honeytokens changed), `installation`. */
  detection_state: { name: string; value: string };
}
