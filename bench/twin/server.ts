import { resolve } from 'node:path';
import { Secret } from '../../src/kernel/secret.ts';
import { buildTwinApp } from './app.ts';
import { openTwinStore } from './store.ts';
import type { Config } from '../../src/config/config.ts';

/**
 * Entry of the unprotected twin, run by bench/run.ts as a child process. Reads the same database
 * variables as Custos (DATABASE_URL, DATABASE_SCHEMA, DATABASE_POOL_SIZE, CUSTOS_DATA_DIR) and
 * TWIN_PORT; listens on 127.0.0.1 over plain HTTP; stops on SIGTERM/SIGINT.
 */
const env = process.env;
const url = env.DATABASE_URL;
const poolSize = Number(env.DATABASE_POOL_SIZE ?? '10');
const database: Config['database'] =
  url !== undefined && url.startsWith('postgres')
    ? { kind: 'postgres', url: new Secret(url), schema: env.DATABASE_SCHEMA, poolSize }
    : { kind: 'sqlite', file: url?.startsWith('sqlite:') ? url.slice('sqlite:'.length) : resolve(env.CUSTOS_DATA_DIR ?? '.', 'twin.db') };

const store = await openTwinStore(database);
const app = await buildTwinApp(store);
await app.listen({ host: '127.0.0.1', port: Number(env.TWIN_PORT ?? '0') });
process.stderr.write(`twin: serving http://127.0.0.1:${String(env.TWIN_PORT)}\n`);
const stop = async () => {
  await app.close();
  await store.close();
  process.exit(0);
};
process.once('SIGTERM', () => void stop());
process.once('SIGINT', () => void stop());
