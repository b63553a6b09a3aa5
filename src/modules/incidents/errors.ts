import { defineErrors, registerErrors } from '../../kernel/errors.ts';

/**
 * Incident register codes. Messages name fields, statuses and ids, never a customer, a note's text
 * or an address.
 */
export const IncidentErrors = defineErrors({
  INCIDENTS_INVALID: {
    status: 400,
    description: 'The incident, its update or its query is malformed (`details.field` names the part); nothing was recorded.',
  },
  INCIDENTS_NOT_FOUND: { status: 404, description: 'No incident with that id.' },
  INCIDENTS_ORIGIN_NOT_FOUND: {
    status: 404,
    description: 'The alert or staff threat report the incident is to be opened from does not exist; nothing was recorded.',
  },
  INCIDENTS_TRANSITION_INVALID: {
    status: 409,
    description: 'The incident cannot move to that status from the one it is in (open → contained → notified → closed; closed reopens to open); nothing changed.',
  },
  INCIDENTS_NOTE_REQUIRED: {
    status: 400,
    description: 'Closing an incident the authority was not notified of, or reopening one, needs a note saying why (GDPR Art. 33(5): every breach is documented); nothing changed.',
  },
  INCIDENTS_SCOPE_REQUIRED: {
    status: 409,
    description: 'The blast radius needs an actor and a time window: give them in the query or set the incident\'s scope first.',
  },
  INCIDENTS_SOURCE_UNRESOLVED: {
    status: 409,
    description:
      'A source address cannot be resolved to the actors that used it: the audit log holds no addresses, and the sources detection keeps are pruned after 30 days unseen, so a window that starts before then cannot be resolved (`field`: `from`; the message says from when it can), or the table is not available. Start the window later, or scope the incident by staff member or API key.',
  },
  INCIDENTS_EXPORT_TARGET_EXISTS: { status: 409, description: 'The export folder already exists; name a new one (nothing is overwritten).' },
});
registerErrors(IncidentErrors);
