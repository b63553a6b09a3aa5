import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdtempSync, openSync, readFileSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { testDatabase, type TestDatabase } from '../support/store.ts';

/**
 * Custos as separate processes: the server (`src/main.ts`) and the CLI (`bin/custos.js`) run
 * under the same Node as the tests, on a test database, with their output captured to files.
 * Every child started here is remembered and killed by `killChildren()` (call it in afterAll).
 * Traffic goes to 127.0.0.1 only.
 */
export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const MAIN = join(ROOT, 'src', 'main.ts');
export const CLI = join(ROOT, 'bin', 'custos.js');

/**
 * Timeout of a test or hook that runs child processes. Each is designed to take seconds; the
 * margin is for a machine busy with other work (every child loads Node and the sources afresh).
 */
export const CHILD_TIMEOUT = 180_000;

const children = new Set<ChildProcess>();
const temps: string[] = [];

/** A temporary folder removed again by `killChildren()`. */
export function tempDir(prefix = 'custos-run-'): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  temps.push(dir);
  return dir;
}

/**
 * Kills every child this module started that is still running (SIGKILL), waits for them, and
 * removes the temporary folders made by `tempDir()`.
 */
export async function killChildren(): Promise<void> {
  const waits: Promise<unknown>[] = [];
  for (const child of children) {
    if (child.exitCode === null && child.signalCode === null) {
      waits.push(new Promise((resolve) => child.once('exit', resolve)));
      child.kill('SIGKILL');
    }
  }
  children.clear();
  await Promise.all(waits);
  for (const dir of temps.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** A fresh test database: a new SQLite file, or a new PostgreSQL schema (created on first use). */
export async function newDatabase(): Promise<TestDatabase> {
  return testDatabase();
}

export function rootKey(): string {
  return randomBytes(32).toString('base64');
}

/** A port nobody listens on right now (the OS picks it). */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/**
 * The environment of a child: only what it needs (no inherited DATABASE_URL or NODE_OPTIONS),
 * the test database, plain HTTP behind a trusted proxy on 127.0.0.1, and a generous rate limit.
 */
export function childEnv(db: TestDatabase, extra: Record<string, string | undefined> = {}): Record<string, string> {
  const env: Record<string, string | undefined> = {
    PATH: process.env.PATH,
    HOME: process.env.HOME,
    ...db.env,
    CUSTOS_PLAIN_HTTP: 'true',
    CUSTOS_TRUST_PROXY: '127.0.0.1',
    CUSTOS_HOST: '127.0.0.1',
    CUSTOS_RATE_LIMIT: '10000000',
    CUSTOS_LOG_LEVEL: 'info',
    ...extra,
  };
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(env)) if (v !== undefined) out[k] = v;
  return out;
}

export interface Exit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

export interface RunResult extends Exit {
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs a Node script to completion (bounded by `timeoutMs`, then SIGKILL); captures its output. */
export async function runNode(script: string, args: readonly string[], env: Record<string, string>, timeoutMs = 150_000): Promise<RunResult> {
  const child = spawn(process.execPath, [script, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let stdout = '';
  let stderr = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (stdout += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (stderr += d));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const exit = await new Promise<Exit>((resolve) => child.once('close', (code, signal) => resolve({ code, signal })));
  clearTimeout(timer);
  children.delete(child);
  return { ...exit, stdout, stderr };
}

/** `custos <args>` as a child process. */
export function runCli(args: readonly string[], env: Record<string, string>, timeoutMs?: number): Promise<RunResult> {
  return runNode(CLI, args, env, timeoutMs);
}

/** A CLI child left running, to be interrupted; `output()` is what it wrote so far. */
export function spawnCli(args: readonly string[], env: Record<string, string>): { child: ChildProcess; exited: Promise<Exit>; output(): string } {
  const child = spawn(process.execPath, [CLI, ...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  let output = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (output += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (output += d));
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  void exited.then(() => children.delete(child));
  return { child, exited, output: () => output };
}

/** `custos apikey create`: the key alone on stdout. */
export async function createKey(env: Record<string, string>, purposes: readonly string[], name = 'resilience'): Promise<string> {
  const result = await runCli(['apikey', 'create', '--name', name, '--purposes', purposes.join(',')], env);
  if (result.code !== 0) throw new Error(`apikey create failed (${String(result.code)}): ${result.stderr}`);
  return result.stdout.trim();
}

export interface ServerChild {
  readonly child: ChildProcess;
  readonly port: number;
  /** http(s)://127.0.0.1:port */
  readonly url: string;
  /** Where stdout and stderr of the child go (one file, in order). */
  readonly logFile: string;
  readonly exited: Promise<Exit>;
  /** What the child wrote so far. */
  output(): string;
  /** Sends a signal and waits for the exit. */
  stop(signal?: NodeJS.Signals): Promise<Exit>;
}

/**
 * Starts `node src/main.ts` with stdout and stderr appended to one log file, and resolves once
 * GET /health answers (or rejects with the child's output when it exits first).
 */
export async function startServer(
  env: Record<string, string>,
  options: { logFile?: string; tls?: boolean; readyTimeoutMs?: number } = {},
): Promise<ServerChild> {
  const server = await spawnServer(env, options);
  const deadline = Date.now() + (options.readyTimeoutMs ?? 90_000);
  let exit: Exit | undefined;
  void server.exited.then((e) => (exit = e));
  for (;;) {
    if (exit !== undefined) throw new Error(`the server exited (${String(exit.code ?? exit.signal)}) before it was ready:\n${server.output()}`);
    if (await healthy(server.url)) return server;
    if (Date.now() > deadline) {
      await server.stop('SIGKILL');
      throw new Error(`the server did not become ready:\n${server.output()}`);
    }
    await sleep(50);
  }
}

/** Spawns the server without waiting for it (for start-ups that are expected to fail). */
export async function spawnServer(env: Record<string, string>, options: { logFile?: string; tls?: boolean } = {}): Promise<ServerChild> {
  const port = env.CUSTOS_PORT !== undefined && /^\d+$/.test(env.CUSTOS_PORT) ? Number(env.CUSTOS_PORT) : await freePort();
  const logFile = options.logFile ?? join(tempDir('custos-log-'), 'server.log');
  const fd = openSync(logFile, 'a');
  const child = spawn(process.execPath, [MAIN], {
    cwd: ROOT,
    env: { CUSTOS_PORT: String(port), ...env },
    stdio: ['ignore', fd, fd],
  });
  closeSync(fd);
  children.add(child);
  const exited = new Promise<Exit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  void exited.then(() => {
    children.delete(child);
  });
  const tls = options.tls ?? env.CUSTOS_PLAIN_HTTP !== 'true';
  return {
    child,
    port,
    url: `${tls ? 'https' : 'http'}://127.0.0.1:${port}`,
    logFile,
    exited,
    output: () => readFileSync(logFile, 'utf8'),
    async stop(signal = 'SIGTERM') {
      if (child.exitCode === null && child.signalCode === null) child.kill(signal);
      return exited;
    },
  };
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

async function healthy(url: string): Promise<boolean> {
  try {
    if (url.startsWith('https:')) return (await insecureGet(`${url}/health`)).status === 200;
    const res = await fetch(`${url}/health`, { signal: AbortSignal.timeout(2000) });
    await res.arrayBuffer();
    return res.status === 200;
  } catch {
    return false;
  }
}

/** GET over HTTPS to a self-signed 127.0.0.1 server (certificate not checked: it is self-signed). */
export function insecureGet(url: string): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: 'GET', rejectUnauthorized: false, timeout: 2000 }, (res) => {
      let body = '';
      res.setEncoding('utf8').on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body }));
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}
