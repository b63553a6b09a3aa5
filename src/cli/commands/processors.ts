import type { CommandRun } from '../main.ts';
import { parse } from '../main.ts';
import { UsageError } from '../io.ts';

const list = (v: unknown) =>
  String(v ?? '')
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length > 0);

/** `custos processors add|list|remove`: the registry of recipients, every change audited as actor `cli`. */
export const PROCESSORS_USAGE = `  processors add --name N --purposes a,b --categories c,d --country CC [--role processor|controller]
                 [--safeguard adequacy|scc|bcr] [--dpa-signed DATE] [--retention TEXT] [--webhook-url URL]
  processors list [--all] [--json]              recipients of customer data (with --all, past ones too)
  processors remove ID                          end a recipient; it stays listed as a past recipient`;

export const processorsCommand: CommandRun = async (runtime, args, io) => {
  const [sub, ...rest] = args;
  if (sub === 'add') {
    const { values } = parse(rest, {
      name: { type: 'string' },
      purposes: { type: 'string' },
      categories: { type: 'string' },
      country: { type: 'string' },
      role: { type: 'string' },
      safeguard: { type: 'string' },
      'dpa-signed': { type: 'string' },
      retention: { type: 'string' },
      'webhook-url': { type: 'string' },
    });
    if (values.name === undefined || values.purposes === undefined || values.categories === undefined || values.country === undefined)
      throw new UsageError('needs --name NAME --purposes a,b --categories c,d --country CC');
    const p = await runtime.processors.add('cli', {
      name: String(values.name),
      purposes: list(values.purposes),
      categories: list(values.categories),
      country: String(values.country),
      ...(values.role === undefined ? {} : { role: String(values.role) as 'processor' | 'controller' }),
      ...(values.safeguard === undefined ? {} : { safeguard: String(values.safeguard) as 'adequacy' | 'scc' | 'bcr' }),
      ...(values['dpa-signed'] === undefined ? {} : { dpa_signed: String(values['dpa-signed']) }),
      ...(values.retention === undefined ? {} : { retention: String(values.retention) }),
      ...(values['webhook-url'] === undefined ? {} : { webhook_url: String(values['webhook-url']) }),
    });
    io.out(p.id);
    if (p.webhook_secret !== undefined) {
      io.out(p.webhook_secret);
      io.err('the second line is the signing secret of its webhook (Standard Webhooks); it is shown only now');
    }
    io.err(`added ${p.role} ${p.name}; the privacy notice is now version ${runtime.consent.notices.current()}`);
    return 0;
  }
  if (sub === 'list') {
    const { values } = parse(rest, { json: { type: 'boolean' }, all: { type: 'boolean' } });
    const rows = await runtime.processors.list({ all: values.all === true });
    if (values.json === true) io.out(JSON.stringify(rows, null, 2));
    else for (const p of rows) io.out([p.id, p.role, p.name, p.purposes.join(','), p.categories.join(','), p.country, p.safeguard ?? '-', p.removed_at === null ? 'current' : `ended ${p.removed_at}`].join('\t'));
    return 0;
  }
  if (sub === 'remove') {
    const id = parse(rest, {}).positionals[0];
    if (id === undefined) throw new UsageError('needs the id (custos processors list shows them)');
    const p = await runtime.processors.remove('cli', id);
    io.out(`${p.id}\tended ${p.removed_at ?? ''}`);
    return 0;
  }
  throw new UsageError('processors add|list|remove');
};
