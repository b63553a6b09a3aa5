/**
 * staff: members, custom roles, invitations, training records, threat reports, just-in-time
 * elevations. No column holds an email, a password or an invitation secret in the clear: a member
 * points at its identity account (which keeps the email encrypted), invitations keep a hash of
 * their secret, and free text (report summaries, elevation reasons) is AES-256-GCM sealed.
 * Times are ISO-8601 text; training dates are calendar dates (YYYY-MM-DD).
 */
export interface StaffTables {
  staff_members: {
    /** `stf_…` */
    id: string;
    /** The identity account (realm 'staff') this member signs in with. */
    account_id: string;
    role: string;
    status: 'invited' | 'active' | 'suspended';
    /** Audit actor ref of whoever created the member ('cli', 'staff:stf_…'). */
    created_by: string;
    created_at: string;
    updated_at: string;
    suspended_at: string | null;
    /** Last time the admins were told this member is blocked by training (throttles the mail). */
    training_alerted_at: string | null;
  };
  /** Roles a shop adds beside the built-in ones (which live in code and cannot be changed). */
  staff_roles: {
    name: string;
    description: string;
    /** JSON array of inventory purposes. */
    purposes: string;
    /** JSON array of staff permissions. */
    permissions: string;
    created_at: string;
    updated_at: string;
  };
  /** Invitation links `<id>.<secret>`: only SHA-256 of the 256-bit secret is kept; single use. */
  staff_invitations: {
    /** `inv_…` */
    id: string;
    member_id: string;
    secret_hash: string;
    expires_at: string;
    used_at: string | null;
    created_at: string;
  };
  staff_courses: {
    /** e.g. `security_awareness` */
    name: string;
    title: string;
    /** JSON array of role names, or `["*"]` for every role. */
    required_for: string;
    created_at: string;
    updated_at: string;
  };
  staff_training: {
    /** `trn_…` */
    id: string;
    member_id: string;
    course: string;
    /** YYYY-MM-DD */
    completed_on: string;
    recorded_by: string;
    recorded_at: string;
  };
  staff_reports: {
    /** `rpt_…` */
    id: string;
    reporter_id: string;
    kind: 'phishing' | 'suspicious_activity' | 'lost_device' | 'other';
    /** AES-256-GCM of `{ summary, details }`, bound to id, reporter and kind; base64url. */
    sealed: string;
    created_at: string;
  };
  staff_elevations: {
    /** `elv_…` */
    id: string;
    member_id: string;
    customer_id: string;
    purpose: string;
    /** AES-256-GCM of the stated reason, bound to the elevation; base64url. */
    reason_sealed: string;
    duration_minutes: number;
    /** 1 when granted by break-glass (fresh MFA, no second person): detection alerts on these. */
    break_glass: number;
    status: 'pending' | 'active' | 'denied' | 'revoked';
    requested_at: string;
    decided_by: string | null;
    decided_at: string | null;
    expires_at: string | null;
    revoked_at: string | null;
  };
  /**
   * Role changes that grant (a role defined or widened, a role given to a member) wait here for a
   * second admin. Content only: role names, purposes, permissions, ids; no personal data.
   */
  staff_role_changes: {
    /** `rch_…` */
    id: string;
    kind: 'define' | 'assign';
    role: string;
    /** The member given the role (kind 'assign'). */
    member_id: string | null;
    /** The requested definition (kind 'define'); purposes and permissions as sorted JSON arrays. */
    description: string | null;
    purposes: string | null;
    permissions: string | null;
    /**
     * What the request was made against, compared at approval: for 'define' the role's content
     * (JSON) or null for a new role; for 'assign' the member's role then.
     */
    base: string | null;
    status: 'pending' | 'applied' | 'denied';
    /** Audit actor ref of the requester ('staff:stf_…'). */
    requested_by: string;
    requested_at: string;
    decided_by: string | null;
    decided_at: string | null;
  };
}
