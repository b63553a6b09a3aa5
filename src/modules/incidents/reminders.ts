import type { KeyVersions } from '../../crypto/key-versions.ts';
import type { Kysely } from 'kysely';
import type { Clock } from '../../kernel/clock.ts';
import { leasedJob } from '../../store/job-lease.ts';
import type { Dialect } from '../../store/database.ts';
import type { Database } from '../../store/schema.ts';
import type { AuditLog } from '../audit/service.ts';
import type { Notifier } from '../staff/notify.ts';
import { REMINDER_HOURS, remindersDue, reminderWords } from './art33.ts';
import { appendTimeline } from './timeline.ts';

/**
 * The Art. 33 reminders: while an incident's clock runs (status open or contained), the members
 * holding `incidents.manage` are mailed at 24, 48 and 66 hours after `aware_at` (48, 24 and 6
 * hours left) and when the 72 hours have passed, through the staff notifier (the project's staff
 * mail, ids and times only: no title, no note, nothing personal). One process at a time runs the
 * job (a lease in `job_leases`, as the retention sweep does), and each reminder is claimed by
 * inserting its row in `incident_reminders` before the mail goes out: its primary key lets one
 * process claim it, so a reminder is sent once even if two processes ran at the same moment.
 * After a downtime that skipped several thresholds, one mail goes for the latest of them.
 */
const LEASE_NAME = 'incident-reminders';
const SYSTEM_ACTOR = 'system:incidents';
const HOUR = 3_600_000;

export interface IncidentReminders {
  /** Sends what is due now; returns how many reminder mails went out (one per incident at most). */
  run(): Promise<number>;
  /** `run` if this process takes the lease; undefined when another holds it. */
  runLeased(): Promise<number | undefined>;
  start(everyMs?: number): void;
  stop(): Promise<void>;
}

export function createIncidentReminders(deps: {
  db: Kysely<Database>;
  dialect: Dialect;
  /** The incident key (timeline entries carry no text here, but the timeline's writer takes it). */
  key: KeyVersions;
  clock: Clock;
  audit: Pick<AuditLog, 'append'>;
  notifier: Pick<Notifier, 'tell'>;
  onError?: (error: unknown) => void;
}): IncidentReminders {
  const { db, clock, audit, notifier } = deps;

  /** Claims a reminder; true when this call inserted its row. */
  async function claim(incidentId: string, hours: number, at: string): Promise<boolean> {
    const inserted = await db
      .insertInto('incident_reminders')
      .values({ incident_id: incidentId, hours, sent_at: at, recipients: 0 })
      .onConflict((oc) => oc.columns(['incident_id', 'hours']).doNothing())
      .executeTakeFirst();
    return Number(inserted.numInsertedOrUpdatedRows ?? 0n) === 1;
  }

  async function run(): Promise<number> {
    const now = clock.now();
    const at = now.toISOString();
    // Incidents whose first reminder is due: aware_at + 24 h ≤ now, i.e. deadline ≤ now + 48 h.
    const firstDue = new Date(now.getTime() + (72 - REMINDER_HOURS[0]) * HOUR).toISOString();
    const open = await db
      .selectFrom('incidents')
      .select(['id', 'severity', 'aware_at', 'deadline_at'])
      .where('status', 'in', ['open', 'contained'])
      .where('deadline_at', '<=', firstDue)
      .orderBy('deadline_at')
      .execute();
    let sent = 0;
    for (const incident of open) {
      const due = remindersDue(new Date(incident.aware_at), now);
      const done = new Set((await db.selectFrom('incident_reminders').select('hours').where('incident_id', '=', incident.id).execute()).map((r) => r.hours));
      const claimed: number[] = [];
      for (const hours of due.filter((h) => !done.has(h))) if (await claim(incident.id, hours, at)) claimed.push(hours);
      const latest = claimed.at(-1);
      if (latest === undefined) continue;
      const words = reminderWords(latest);
      const recipients = await notifier.tell(
        'incidents.manage',
        `Custos: incident ${incident.id}: ${words} to notify the supervisory authority`,
        `Incident ${incident.id} (severity ${incident.severity}): ${words} to notify the supervisory authority (GDPR Art. 33(1)).\n` +
          `Aware since: ${incident.aware_at}\nDeadline: ${incident.deadline_at}\n\n` +
          'Drafts: GET /v1/security/incidents/' + incident.id + '/drafts, or `custos incident export ' + incident.id + ' --out <folder>`. ' +
          'Set the status to notified once the authority has the notification, or close the incident with the reason it needs none.',
      );
      await db.updateTable('incident_reminders').set({ recipients }).where('incident_id', '=', incident.id).where('hours', '=', latest).execute();
      await db.transaction().execute((tx) => appendTimeline(tx, { dialect: deps.dialect, key: deps.key, now }, incident.id, { actor: SYSTEM_ACTOR, kind: 'reminder', detail: { hours: latest, recipients } }));
      await audit.append({ actor: SYSTEM_ACTOR, action: 'incidents.reminder_sent', collection: 'incidents', recordId: incident.id, fields: [`hours_${latest}`], outcome: 'success' });
      sent += 1;
    }
    return sent;
  }

  const job = leasedJob({ db, clock, name: LEASE_NAME, leaseMs: 5 * 60_000, run, onError: deps.onError });
  return {
    run,
    runLeased: () => job.runLeased(),
    start: (everyMs = 5 * 60_000) => job.start(everyMs),
    stop: () => job.stop(),
  };
}
