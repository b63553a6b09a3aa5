import { randomBytes } from 'node:crypto';
import { childEnv, freePort, runNode, startServer, type Child } from './children.ts';
import type { BenchDatabase } from './databases.ts';
import { PROTECTED_ENV } from './in-process-pair.ts';

/**
 * The two servers of a comparison. Both speak plain HTTP on 127.0.0.1: Custos with
 * CUSTOS_PLAIN_HTTP=true behind a "trusted proxy" at 127.0.0.1 (the mode for a TLS-terminating
 * proxy in production), so that the transport is the same for both and TLS is not measured.
 */
export interface Target {
  readonly side: 'protected' | 'unprotected';
  readonly child: Child;
  /** Headers sent with every request (the same ones to both servers). */
  readonly headers: Record<string, string>;
}

export interface ProtectedSetup {
  readonly env: Record<string, string>;
  readonly apiKey: string;
}

/** Custos's environment for this database, and an API key made with the CLI before start. */
export async function setUpProtected(db: BenchDatabase): Promise<ProtectedSetup> {
  const env = childEnv({
    ...db.protectedEnv,
    CUSTOS_ROOT_KEY: randomBytes(32).toString('base64'),
    CUSTOS_HOST: '127.0.0.1',
    ...PROTECTED_ENV,
  });
  const out = await runNode(['bin/custos.js', 'apikey', 'create', '--name', 'bench', '--purposes', 'support,account'], env);
  const apiKey = out.trim().split('\n').at(-1) ?? '';
  if (!apiKey.startsWith('ck_')) throw new Error('custos apikey create printed no key');
  return { env, apiKey };
}

function commonHeaders(apiKey: string): Record<string, string> {
  return { authorization: `Bearer ${apiKey}`, 'content-type': 'application/json' };
}

export async function startProtected(setup: ProtectedSetup, nodeFlags: readonly string[] = []): Promise<Target> {
  const port = await freePort();
  const child = await startServer({ name: 'custos', script: 'src/main.ts', port, env: { ...setup.env, CUSTOS_PORT: String(port) }, nodeFlags });
  return { side: 'protected', child, headers: commonHeaders(setup.apiKey) };
}

/** The twin gets the same headers (it ignores them), so both servers parse requests of one size. */
export async function startTwin(db: BenchDatabase, apiKey: string): Promise<Target> {
  const port = await freePort();
  const child = await startServer({ name: 'twin', script: 'bench/twin/server.ts', port, env: childEnv({ ...db.twinEnv, TWIN_PORT: String(port) }) });
  return { side: 'unprotected', child, headers: commonHeaders(apiKey) };
}
