import type { Kysely } from 'kysely';
import type { Clock } from '../../kernel/clock.ts';
import type { Database } from '../../store/schema.ts';
import type { AuditLog } from '../audit/service.ts';
import type { Notifier } from '../staff/notify.ts';
import { utcDate } from './deadlines.ts';
import type { RightsService } from './service.ts';

const DIGEST = 'rights-digest';

/**
 * The daily mail to staff holding `rights.manage`: how many data-subject requests are open, how
 * many are due within 7 days, and the earliest due date — counts and dates only, never a customer
 * (they read the queue at GET /v1/rights/requests). Sent at most once a day across every process:
 * the day it went out is kept in `job_leases` and claimed by a conditional update. Nothing is sent
 * while no request is open. Returns whether this call sent it.
 */
export async function sendRightsDigest(deps: {
  db: Kysely<Database>;
  clock: Clock;
  rights: Pick<RightsService, 'list'>;
  notifier: Notifier;
  audit: Pick<AuditLog, 'append'>;
}): Promise<boolean> {
  const { db } = deps;
  const today = utcDate(deps.clock.now());
  const open = await deps.rights.list({});
  if (open.length === 0) return false;
  await db.insertInto('job_leases').values({ name: DIGEST, holder: '', expires_at: '' }).onConflict((oc) => oc.column('name').doNothing()).execute();
  const claimed = await db.updateTable('job_leases').set({ expires_at: today }).where('name', '=', DIGEST).where('expires_at', '<', today).executeTakeFirst();
  if (Number(claimed.numUpdatedRows) !== 1) return false;
  const soon = open.filter((r) => r.due_soon);
  const earliest = open.reduce((min, r) => (r.due_on < min ? r.due_on : min), open[0]!.due_on);
  const subject = soon.length > 0 ? `Custos: ${soon.length} data-subject request(s) due within 7 days` : `Custos: ${open.length} open data-subject request(s)`;
  const text = [
    `Open data-subject requests: ${open.length}.`,
    `Due within 7 days: ${soon.length}.`,
    `Earliest due date: ${earliest}.`,
    '',
    'The queue: GET /v1/rights/requests (staff holding rights.manage).',
  ].join('\n');
  const sent = await deps.notifier.tell('rights.manage', subject, text);
  await deps.audit.append({ actor: 'system:rights', action: 'rights.digest_sent', fields: [], outcome: sent > 0 ? 'success' : 'failure' });
  return true;
}
