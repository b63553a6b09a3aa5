/** incidents: the breach register (migration 0017-incidents). Times are ISO 8601 UTC text. */
export interface IncidentTables {
  incidents: {
    id: string;
    severity: string;
    /** open → contained → notified → closed (docs/when-something-goes-wrong.md). */
    status: string;
    /** 'alert', 'report' or 'manual'. */
    origin: string;
    /** The alert id or the staff threat report id it was opened from. */
    origin_ref: string | null;
    /** When the shop became aware of the breach: the GDPR Art. 33(1) clock starts here. */
    aware_at: string;
    /** aware_at + 72 hours. */
    deadline_at: string;
    /** When the supervisory authority was notified (status `notified`); the clock stops. */
    notified_at: string | null;
    closed_at: string | null;
    /** The actor whose activity is the incident's scope: 'staff', 'apikey' or 'source', with its id. */
    scope_actor_kind: string | null;
    scope_actor_id: string | null;
    scope_from: string | null;
    /** NULL: up to now. */
    scope_to: string | null;
    /** JSON { database, host, root_key }: what besides the actor was compromised (Art. 34(3)(a) decision). */
    exposure: string;
    /** AES-256-GCM box (base64url) of { title, description, consequences, measures }. */
    sealed: string;
    created_by: string;
    created_at: string;
    updated_at: string;
  };
  incident_timeline: {
    id: string;
    incident_id: string;
    /** 1, 2, …: the order entries were recorded in (unique per incident). */
    seq: number;
    /** When it happened (a note may record something earlier than its writing). */
    at: string;
    recorded_at: string;
    actor: string;
    /** opened, status, note, update, reminder, export. */
    kind: string;
    /** JSON of non-personal details (a status change's from and to, the fields an update changed). */
    detail: string;
    /** The note's text, sealed; NULL for entries without text. */
    sealed: string | null;
  };
  /** One row per Art. 33 reminder sent: `hours` after aware_at (24, 48, 66, 72). */
  incident_reminders: { incident_id: string; hours: number; sent_at: string; recipients: number };
}
