import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildApp } from '../src/app.ts';
import { loadConfig } from '../src/config/config.ts';
import { createLogger } from '../src/kernel/logger.ts';
import { openRuntime } from '../src/runtime.ts';

/**
 * Writes the OpenAPI document the server publishes at /v1/openapi.json to the file named by the
 * first argument (stdout without one), from `buildApp` over a throw-away SQLite data folder;
 * nothing listens. `npm run lint:openapi` lints the result.
 */
const dataDir = mkdtempSync(join(tmpdir(), 'custos-openapi-'));
try {
  const config = loadConfig({
    CUSTOS_DATA_DIR: dataDir,
    CUSTOS_ROOT_KEY: randomBytes(32).toString('base64'),
    CUSTOS_PLAIN_HTTP: 'true',
    CUSTOS_TRUST_PROXY: '127.0.0.1',
    CUSTOS_PUBLIC_URL: process.env.CUSTOS_PUBLIC_URL ?? 'https://127.0.0.1:8443',
    CUSTOS_LOG_LEVEL: 'silent',
  });
  const runtime = await openRuntime(config, { background: false, logger: createLogger('silent') });
  try {
    const app = await buildApp(runtime);
    await app.ready();
    const text = `${JSON.stringify(app.swagger(), null, 2)}\n`;
    await app.close();
    if (process.argv[2] === undefined) process.stdout.write(text);
    else writeFileSync(process.argv[2], text);
  } finally {
    await runtime.close();
  }
} finally {
  rmSync(dataDir, { recursive: true, force: true });
}
