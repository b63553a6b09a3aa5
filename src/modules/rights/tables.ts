/** rights: data-subject requests and the transitions of each (migration 0014-rights). */
export interface RightsTables {
  rights_requests: {
    id: string;
    kind: string;
    customer_id: string;
    jurisdiction: string;
    state: string;
    /** How the request came in: customer (own session), api_key, staff, integration. */
    channel: string;
    /** How the requester's identity was verified (a method name, never a document or a value); null while pending. */
    identity_verification: string | null;
    received_at: string;
    /** While identity verification is pending: the date it started (the GDPR clock stands still). */
    paused_since: string | null;
    paused_days: number;
    extended: number;
    /** The legal reason of a denial or the reason of an extension, as told to the customer. */
    reason: string | null;
    due_on: string;
    acknowledge_by: string | null;
    closed_at: string | null;
    updated_at: string;
    /** Erasure: the plan (JSON) fixed by the first run, so a resumed run finishes the same plan. */
    erasure_plan: string | null;
    /** Erasure: the last step done (planned, held, account_closed, shredded). */
    erasure_stage: string | null;
    /** Erasure: the signed receipt (JWS compact serialisation). */
    receipt: string | null;
  };
  rights_request_events: {
    request_id: string;
    seq: number;
    state: string;
    actor: string;
    reason: string | null;
    at: string;
  };
}
