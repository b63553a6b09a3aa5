import type { CommandRun } from '../main.ts';
import { parse } from '../main.ts';
import { UsageError } from '../io.ts';

export const HONEYTOKEN_USAGE = `  honeytoken plant [--customers N] [--cards N] [--email-domain DOMAIN]
                                                plant decoy customers (default 3), cards (default 2) and an API key;
                                                prints them as JSON on stdout (the key's secret only now)`;

export const DETECTION_USAGE = `  detection blocks [--json]                     sources a detection rule blocks now, until when
  detection unblock SOURCE                      lift the block of a source (IPv4 address, or IPv6 /64 as listed)
  detection origin REQUEST_ID…                  where card requests came from (PCI DSS 10.2.2): source, actor, time
                                                of each request id a card audit entry names; kept a year`;

/**
 * `custos honeytoken plant`: decoys that no legitimate flow touches (README "Honeytokens"); any
 * touch raises a critical alert. Prints exactly `{ "customers": [{ "id" }], "cards": [{ "token" }],
 * "api_key": { "id", "name", "secret" } }`. The decoys' emails are at `--email-domain`: by default
 * the host of CUSTOS_PUBLIC_URL (a mail to one of them then also tells the shop of a leak), else
 * example.com.
 */
export const honeytokenCommand: CommandRun = async (runtime, args, io) => {
  const [sub, ...rest] = args;
  if (sub !== 'plant') throw new UsageError(`honeytoken plant\n${HONEYTOKEN_USAGE}`);
  const { values } = parse(rest, { customers: { type: 'string' }, cards: { type: 'string' }, 'email-domain': { type: 'string' } });
  const count = (raw: string | undefined, fallback: number, name: string) => {
    if (raw === undefined) return fallback;
    if (!/^\d{1,2}$/.test(raw) || Number(raw) > 50) throw new UsageError(`--${name} takes a number from 0 to 50`);
    return Number(raw);
  };
  const customers = count(values.customers, 3, 'customers');
  const cards = count(values.cards, 2, 'cards');
  if (cards > 0 && customers === 0) throw new UsageError('decoy cards belong to decoy customers: plant at least one with --customers');
  const domain = values['email-domain'] ?? (runtime.config.publicUrl === undefined ? 'example.com' : new URL(runtime.config.publicUrl).hostname);
  if (!/^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i.test(domain)) throw new UsageError('--email-domain takes a domain name such as shop.example');
  const planted = await runtime.detection.honeytokens.plant({ customers, cards, emailDomain: domain.toLowerCase() });
  io.out(JSON.stringify(planted, null, 2));
  io.err(`planted ${planted.customers.length} decoy customers, ${planted.cards.length} decoy cards and the decoy API key ${planted.api_key.id}; the key's secret is shown only now`);
  return 0;
};

/**
 * `custos detection blocks|unblock`: the sources a `block_source` response refuses; `custos
 * detection origin`: the origin of card requests, which the audit log names by request id only.
 */
export const detectionCommand: CommandRun = async (runtime, args, io) => {
  const [sub, ...rest] = args;
  if (sub === 'blocks') {
    const { values } = parse(rest, { json: { type: 'boolean' } });
    const blocks = await runtime.detection.blocks.list();
    if (values.json === true) io.out(JSON.stringify(blocks, null, 2));
    else for (const b of blocks) io.out([b.source, `until ${b.until}`, b.alert_id ?? ''].join('\t'));
    return 0;
  }
  if (sub === 'unblock') {
    const { positionals } = parse(rest, {});
    const source = positionals[0];
    if (source === undefined) throw new UsageError('needs the source (custos detection blocks lists them)');
    if (!(await runtime.detection.unblock(source, 'cli'))) {
      io.err(`no block of ${source}`);
      return 1;
    }
    io.out(`${source}\tunblocked`);
    return 0;
  }
  if (sub === 'origin') {
    const { positionals } = parse(rest, {});
    if (positionals.length === 0) throw new UsageError('needs the request id of a card audit entry (custos audit export lists them)');
    const found = await runtime.detection.originsOf(positionals);
    for (const o of found) io.out(JSON.stringify(o));
    const missing = positionals.filter((id) => !found.some((o) => o.request_id === id));
    for (const id of missing) io.err(`no origin kept for ${id}`);
    return missing.length === 0 ? 0 : 1;
  }
  throw new UsageError(`detection blocks|unblock|origin\n${DETECTION_USAGE}`);
};
