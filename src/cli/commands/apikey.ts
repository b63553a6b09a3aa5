import type { CommandRun } from '../main.ts';
import { parse } from '../main.ts';
import { UsageError } from '../io.ts';
import type { ApiKeyInfo } from '../../modules/apikeys/service.ts';

export const APIKEY_USAGE = `  apikey create --name NAME --purposes a,b      create an API key; prints it once on stdout
  apikey list [--json]                          list API keys (never the secrets), with their last use (to the hour)
  apikey revoke ID                              revoke a key at once
  apikey suspend ID                             suspend a key at once (refused with APIKEY_SUSPENDED until resumed)
  apikey resume ID                              lift a key's suspension`;

/** `custos apikey create|list|revoke|suspend|resume`: keys are shown once, alone on standard output. */
export const apikeyCommand: CommandRun = async (runtime, args, io) => {
  const [sub, ...rest] = args;
  if (sub === 'create') {
    const { values } = parse(rest, { name: { type: 'string' }, purposes: { type: 'string' } });
    if (values.name === undefined || values.purposes === undefined) throw new UsageError('needs --name NAME --purposes a,b');
    const purposes = String(values.purposes)
      .split(',')
      .map((p) => p.trim())
      .filter((p) => p.length > 0);
    if (purposes.length === 0) throw new UsageError('--purposes needs at least one purpose');
    const unknown = purposes.filter((p) => !runtime.inventory.purposes.has(p));
    if (unknown.length > 0)
      throw new UsageError(`unknown purpose ${unknown.join(', ')}; declared: ${[...runtime.inventory.purposes.keys()].join(', ')}`);
    const { key, info } = await runtime.apiKeys.create({ name: String(values.name), purposes });
    await runtime.audit.append({ actor: 'cli', action: 'apikey.create', recordId: info.id, fields: [], outcome: 'success' });
    io.out(key.reveal());
    io.err(`created ${info.id} for purposes ${info.purposes.join(', ')}; the key is shown only now`);
    return 0;
  }
  if (sub === 'list') {
    const { values } = parse(rest, { json: { type: 'boolean' } });
    const keys = await runtime.apiKeys.list();
    if (values.json === true) io.out(JSON.stringify(keys, null, 2));
    else
      for (const k of keys)
        io.out([k.id, keyState(k), k.purposes.join(','), k.created_at, `last used ${k.last_used_at ?? 'never'}`, k.name].join('\t'));
    return 0;
  }
  if (sub === 'revoke' || sub === 'suspend' || sub === 'resume') {
    const { positionals } = parse(rest, {});
    const id = positionals[0];
    if (id === undefined) throw new UsageError('needs the key id (custos apikey list shows them)');
    const info = sub === 'revoke' ? await runtime.apiKeys.revoke(id) : sub === 'suspend' ? await runtime.apiKeys.suspend(id) : await runtime.apiKeys.resume(id);
    await runtime.audit.append({ actor: 'cli', action: `apikey.${sub}`, recordId: info.id, fields: [], outcome: 'success' });
    io.out(`${info.id}\t${keyState(info)}`);
    return 0;
  }
  throw new UsageError(`apikey create|list|revoke|suspend|resume\n${APIKEY_USAGE}`);
};

const keyState = (k: ApiKeyInfo) => (k.revoked_at !== null ? `revoked ${k.revoked_at}` : k.suspended_at !== null ? `suspended ${k.suspended_at}` : 'active');
