import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fail } from '../../kernel/errors.ts';
import { IncidentErrors } from '../../modules/incidents/errors.ts';
import { exportFiles, writeExport } from '../../modules/incidents/export.ts';
import { ACTOR_KINDS, STATUSES, type IncidentStatus, type OpenInput } from '../../modules/incidents/schemas.ts';
import type { IncidentView } from '../../modules/incidents/view.ts';
import { CLI_OPERATOR } from '../../modules/staff/ports.ts';
import { UsageError } from '../io.ts';
import type { CommandRun } from '../main.ts';
import { parse } from '../main.ts';

/**
 * `custos incident …`: the incident register from the command line, as the operator (who holds the
 * database and keys; audited with actor 'cli'). `export` writes a folder (src/modules/incidents/
 * export.ts): the register entry, the timeline, the blast radius and its affected-customers list,
 * the drafts for the authority and the customers, a manifest and SHA-256 sums.
 */
export const INCIDENT_USAGE = `  incident open --title T --severity low|medium|high|critical [--description D] [--aware-at ISO]
                [--from-alert ID | --from-report rpt_…] [--actor staff:stf_…|apikey:key_…|source:ADDR --from ISO [--to ISO]]
                [--exposure database,host,root_key] [--json]
                                                open an incident; the 72-hour clock runs from --aware-at (default now)
  incident list [--status open|contained|notified|closed] [--json]
  incident export ID --out DIR                  write the register entry, timeline, affected list and drafts to a new folder`;

const line = (i: IncidentView) =>
  [i.id, i.status, i.severity, i.clock.state, `deadline ${i.clock.deadline_at}`, i.scope === null ? 'no scope' : `${i.scope.actor.kind}:${i.scope.actor.id}`, i.title.replace(/\s+/g, ' ')].join('\t');

function openInput(values: Record<string, string | boolean | undefined>): OpenInput {
  const str = (k: string) => (typeof values[k] === 'string' ? (values[k] as string) : undefined);
  const input: OpenInput = {};
  for (const [flag, key] of [['title', 'title'], ['description', 'description'], ['aware-at', 'aware_at'], ['from-alert', 'from_alert'], ['from-report', 'from_report']] as const) {
    const v = str(flag);
    if (v !== undefined) input[key] = v;
  }
  const severity = str('severity');
  if (severity !== undefined) input.severity = severity as OpenInput['severity'];
  const actor = str('actor');
  if (actor !== undefined) {
    const at = actor.indexOf(':');
    const kind = actor.slice(0, at);
    if (at < 0 || !(ACTOR_KINDS as readonly string[]).includes(kind)) throw new UsageError('--actor is staff:stf_…, apikey:key_… or source:ADDRESS');
    const from = str('from');
    if (from === undefined) throw new UsageError('--actor needs --from (the start of the window)');
    input.scope = { actor: { kind: kind as (typeof ACTOR_KINDS)[number], id: actor.slice(at + 1) }, from, ...(str('to') === undefined ? {} : { to: str('to')! }) };
  } else if (str('from') !== undefined || str('to') !== undefined) throw new UsageError('--from and --to go with --actor');
  const exposure = str('exposure');
  if (exposure !== undefined) {
    const parts = exposure.split(',').map((p) => p.trim());
    const unknown = parts.filter((p) => !['database', 'host', 'root_key'].includes(p));
    if (unknown.length > 0) throw new UsageError('--exposure lists database, host, root_key');
    input.exposure = { database: parts.includes('database'), host: parts.includes('host'), root_key: parts.includes('root_key') };
  }
  return input;
}

export const incidentCommand: CommandRun = async (runtime, args, io) => {
  const [sub, ...rest] = args;
  const incidents = runtime.incidents;
  if (sub === 'open') {
    const { values } = parse(rest, {
      title: { type: 'string' },
      severity: { type: 'string' },
      description: { type: 'string' },
      'aware-at': { type: 'string' },
      'from-alert': { type: 'string' },
      'from-report': { type: 'string' },
      actor: { type: 'string' },
      from: { type: 'string' },
      to: { type: 'string' },
      exposure: { type: 'string' },
      json: { type: 'boolean' },
    });
    const opened = await incidents.open(CLI_OPERATOR, openInput(values));
    if (values.json === true) io.out(JSON.stringify(opened, null, 2));
    else io.out(`${opened.id} opened; notify the supervisory authority by ${opened.clock.deadline_at} (GDPR Art. 33: 72 hours from ${opened.clock.aware_at})`);
    return 0;
  }
  if (sub === 'list') {
    const { values } = parse(rest, { status: { type: 'string' }, json: { type: 'boolean' } });
    const status = values.status;
    if (status !== undefined && !(STATUSES as readonly string[]).includes(status)) throw new UsageError(`--status is one of ${STATUSES.join(', ')}`);
    const list = await incidents.list(CLI_OPERATOR, { status: status as IncidentStatus | undefined, limit: 200 });
    if (values.json === true) io.out(JSON.stringify(list, null, 2));
    else for (const i of list) io.out(line(i));
    return 0;
  }
  if (sub === 'export') {
    const { values, positionals } = parse(rest, { out: { type: 'string' } });
    const [id, ...extra] = positionals;
    if (id === undefined || extra.length > 0 || typeof values.out !== 'string' || values.out === '') throw new UsageError('incident export ID --out DIR');
    const dir = resolve(values.out);
    if (existsSync(dir)) fail(IncidentErrors.INCIDENTS_EXPORT_TARGET_EXISTS, 'the export folder already exists; name a new one');
    const files = exportFiles(await incidents.exportBundle(CLI_OPERATOR, id));
    writeExport(dir, files);
    io.out(`wrote ${files.size} files to ${dir} (it lists customers: keep it as you keep customer data)`);
    return 0;
  }
  throw new UsageError('incident open|list|export');
};
