import { ropa, ropaCsv, sourcesOf } from '../../modules/transparency/notice.ts';
import type { CommandRun } from '../main.ts';
import { parse } from '../main.ts';
import { UsageError } from '../io.ts';

/** `custos ropa export [--format json|csv]`: the record of processing activities (GDPR Art. 30(1)) on standard output. */
export const ROPA_USAGE = `  ropa export [--format json|csv]               the record of processing activities (GDPR Art. 30(1))`;

export const ropaCommand: CommandRun = async (runtime, args, io) => {
  const [sub, ...rest] = args;
  if (sub !== 'export') throw new UsageError('ropa export [--format json|csv]');
  const { values } = parse(rest, { format: { type: 'string' } });
  const format = values.format ?? 'json';
  if (format !== 'json' && format !== 'csv') throw new UsageError('--format is json or csv');
  const rows = ropa(await sourcesOf(runtime));
  io.out(format === 'csv' ? ropaCsv(rows).trimEnd() : JSON.stringify(rows, null, 2));
  return 0;
};
