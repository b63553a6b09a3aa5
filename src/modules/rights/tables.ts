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
  /** Download links of access and portability exports (migration 0021-rights-export): signed, single use, with an end. */
  rights_exports: {
    id: string;
    request_id: string;
    customer_id: string;
    created_at: string;
    expires_at: string;
    /** Set once, when the link is used; a second use is refused. */
    downloaded_at: string | null;
  };
  /** Restrictions of processing (GDPR Art. 18): in force from `started_at` until `lifts_at` (none: until lifted). */
  rights_restrictions: {
    id: string;
    customer_id: string;
    request_id: string;
    started_at: string;
    /** Purposes the customer consented to despite the restriction (Art. 18(2)), a JSON array. */
    allowed_purposes: string;
    /** Why the restriction is lifted, as told to the customer (Art. 18(3)). */
    lift_reason: string | null;
    /** When the customer was told of the lift. */
    lift_noticed_at: string | null;
    lifts_at: string | null;
  };
  /** Shopify compliance webhooks received, by `X-Shopify-Webhook-Id` (a redelivery is answered once). */
  shopify_webhooks: {
    webhook_id: string;
    topic: string;
    shop_domain: string;
    received_at: string;
    /** request_filed, no_data_held, shop_erasure_recorded. */
    outcome: string;
    /** The data-subject request or shop erasure it filed. */
    request_id: string | null;
  };
  /** `shop/redact`: the erasure of every customer of a shop, run only once two staff members approved it. */
  shop_erasures: {
    id: string;
    shop_domain: string;
    webhook_id: string;
    received_at: string;
    /** pending → approved (first approver) → confirmed (second approver) → completed. */
    state: string;
    approved_by: string | null;
    approved_at: string | null;
    confirmed_by: string | null;
    confirmed_at: string | null;
    completed_at: string | null;
    customers_erased: number;
  };
}
