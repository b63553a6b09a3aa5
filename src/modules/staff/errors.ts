import { defineErrors, registerErrors } from '../../kernel/errors.ts';

/**
 * Every code the staff capability answers with. Messages name rules, fields and ids, never values:
 * no email, reason, report text or invitation secret ever reaches a message.
 */
export const StaffErrors = defineErrors({
  STAFF_SESSION_REQUIRED: { status: 401, description: 'This route needs a signed-in staff member.' },
  STAFF_NOT_FOUND: { status: 404, description: 'No staff member with that id or email.' },
  STAFF_MEMBER_EXISTS: { status: 409, description: 'That email already belongs to a staff member.' },
  STAFF_ROLE_UNKNOWN: { status: 400, description: 'The role is neither a built-in role nor one the shop defined.' },
  STAFF_ROLE_INVALID: {
    status: 400,
    description:
      'A role definition is refused: malformed name, a built-in role name, a purpose the inventory does not declare, or an unknown permission.',
  },
  STAFF_ROLE_IN_USE: { status: 409, description: 'The role is still held by staff members; give them another role first.' },
  STAFF_PERMISSION_DENIED: { status: 403, description: "The staff member's role lacks the permission this action needs." },
  STAFF_SELF_CHANGE: { status: 409, description: 'Staff members cannot suspend themselves or change their own role.' },
  STAFF_SUSPENDED: { status: 403, description: 'The staff member is suspended: no access to personal data and no staff actions.' },
  STAFF_NOT_ACTIVE: { status: 403, description: 'The staff member has not accepted the invitation yet.' },
  STAFF_MFA_REQUIRED: {
    status: 403,
    description: 'The staff member has no second factor (TOTP or passkey): enrol one before any access to personal data (PCI DSS 4.0.1 8.4.2).',
  },
  STAFF_TRAINING_REQUIRED: {
    status: 403,
    description:
      "A training course the staff member's role requires is missing or expired: no access to personal data until it is recorded (PCI DSS 4.0.1 12.6.3). `details.courses` names them.",
  },
  STAFF_ELEVATION_REQUIRED: {
    status: 403,
    description: "The purpose is beyond the staff member's role and no approved elevation for this customer and purpose is active.",
  },
  STAFF_INVITATION_INVALID: { status: 400, description: 'The invitation link is malformed, unknown, forged, expired or superseded.' },
  STAFF_INVITATION_USED: { status: 400, description: 'The invitation link was already used; each link works once.' },
  STAFF_MEMBER_NOT_INVITED: { status: 409, description: 'The staff member already accepted an invitation; no new one is issued.' },
  STAFF_COURSE_UNKNOWN: { status: 404, description: 'No training course with that name.' },
  STAFF_COURSE_INVALID: { status: 400, description: 'A course definition is refused: malformed name or title, or an unknown role.' },
  STAFF_TRAINING_SELF_CERTIFICATION: {
    status: 403,
    description: "A staff member cannot record their own training completion; another training manager (or the `custos` CLI) records it.",
  },
  STAFF_TRAINING_DATE_INVALID: { status: 400, description: 'The completion date is not a real YYYY-MM-DD date, or lies in the future.' },
  STAFF_REPORT_INVALID: {
    status: 400,
    description: 'A threat report is refused: unknown kind, empty or too long summary (500 characters), or too long details (4000).',
  },
  STAFF_ELEVATION_INVALID: {
    status: 400,
    description:
      'An elevation request is refused: malformed customer id, undeclared purpose, reason shorter than 10 or longer than 500 characters, or a duration outside 5–480 minutes.',
  },
  STAFF_ELEVATION_NEEDLESS: { status: 409, description: "The staff member's role already covers that purpose; no elevation is needed." },
  STAFF_ELEVATION_NOT_FOUND: { status: 404, description: 'No elevation with that id.' },
  STAFF_ELEVATION_NOT_PENDING: {
    status: 409,
    description: 'The elevation is no longer waiting for a decision (approved, denied, revoked, or older than 24 hours).',
  },
  STAFF_ELEVATION_SELF_APPROVAL: { status: 403, description: 'An elevation must be approved by a second person, not by the requester.' },
  STAFF_ROLE_CHANGE_NOT_FOUND: { status: 404, description: 'No role change with that id.' },
  STAFF_ROLE_CHANGE_NOT_PENDING: {
    status: 409,
    description: 'The role change is no longer waiting for a decision (applied, denied, or older than 24 hours).',
  },
  STAFF_ROLE_CHANGE_SELF_APPROVAL: {
    status: 403,
    description: 'A role change that grants must be approved by a second admin: not its requester, not the member given the role, not a holder of the role being widened.',
  },
  STAFF_ROLE_CHANGE_STALE: {
    status: 409,
    description: "The role (or the member's role) changed after the request was made; the request no longer applies, ask again.",
  },
  STAFF_FRESH_MFA_REQUIRED: {
    status: 401,
    description: 'Break-glass access needs a second factor verified within the last 5 minutes; verify again and retry.',
  },
});
registerErrors(StaffErrors);
