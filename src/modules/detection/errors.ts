import { defineErrors, registerErrors } from '../../kernel/errors.ts';

/** Detection codes; messages never carry a client address or personal data. */
export const DetectionErrors = defineErrors({
  DETECTION_SOURCE_BLOCKED: {
    status: 403,
    description:
      'Requests from this client address (IPv6: its /64) are refused for a while: a detection rule blocked it (credential stuffing by default). `retry_after_seconds` says for how long; `custos detection unblock` lifts it.',
  },
  DETECTION_NOT_ALLOWED: {
    status: 403,
    description: 'Security alerts are for staff holding `incidents.manage` and for API keys scoped to the `security` purpose.',
  },
  DETECTION_ALERT_NOT_FOUND: { status: 404, description: 'No alert with this id.' },
  DETECTION_ALERT_CLOSED: { status: 409, description: 'The alert is closed; it can no longer be acknowledged or closed again.' },
});
registerErrors(DetectionErrors);
