/**
 * The staff capability at a glance (CONVENTIONS.md, module layout).
 *
 * Owns: tables staff_members, staff_roles, staff_invitations, staff_courses, staff_training,
 * staff_reports, staff_elevations (migration 0003-staff), staff_role_changes (0005-staff-role-changes);
 * routes under /v1/staff (routes*.ts) and POST /v1/staff/invitations/accept; error codes STAFF_*
 * (errors.ts); the policy guard for staff actors (guard.ts); dual control of elevations and role
 * changes (dual-control.ts, elevation-service.ts, role-service.ts); `custos staff …`
 * (src/cli/commands/staff.ts).
 *
 * Personal data it holds: none in the clear. A member points at an identity account (which keeps
 * the email encrypted); report text and elevation reasons are AES-256-GCM sealed (keys.ts);
 * invitation secrets are kept as SHA-256 only. Audit entries name ids, purposes, permissions and
 * kinds; a role's description text is never audited.
 *
 * Depends on: identity (StaffAccounts: accounts, second-factor status), a mailer (StaffMailer),
 * audit (AuditLog), the inventory's purposes, policy (Actor, PolicyGuard).
 */

/** Every audit action staff writes. Detection rules key on these; break-glass grants are `staff.elevation.break_glass`. */
export const STAFF_AUDIT_ACTIONS = [
  // Refused reads of personal data (outcome 'denied', subject = the customer).
  'staff.access.suspended',
  'staff.access.not_active',
  'staff.access.mfa_required',
  'staff.access.training_required',
  'staff.access.elevation_required',
  // Directory (subject = the member).
  'staff.member.create',
  'staff.member.invite',
  'staff.member.accept',
  'staff.member.role',
  'staff.member.suspend',
  'staff.member.reactivate',
  // Roles (record = the role name; fields = its content: role.<name>, purposes.<p>, permissions.<p>).
  'staff.role.define',
  'staff.role.remove',
  // Role changes waiting for a second admin (record = the change; subject = the member for an assignment).
  'staff.role_change.request',
  'staff.role_change.approve',
  'staff.role_change.deny',
  // Training.
  'staff.course.define',
  'staff.course.remove',
  'staff.training.complete',
  // Threat reports.
  'staff.report.create',
  'staff.report.read',
  // Elevations (subject = the customer, record = the elevation).
  'staff.elevation.request',
  'staff.elevation.approve',
  'staff.elevation.deny',
  'staff.elevation.revoke',
  'staff.elevation.break_glass',
] as const;
export type StaffAuditAction = (typeof STAFF_AUDIT_ACTIONS)[number];
