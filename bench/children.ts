import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { fileURLToPath } from 'node:url';

/**
 * Servers under test run as child processes of the Node that runs the bench (node_modules/.bin's
 * when started through npm), so the load generator never shares their event loop. Every child
 * is tracked and stopped at the end, on error and on Ctrl-C.
 */
export const ROOT = fileURLToPath(new URL('..', import.meta.url));

export interface Child {
  readonly name: string;
  readonly url: string;
  readonly process: ChildProcess;
  stderr(): string;
  stop(): Promise<void>;
}

const running = new Set<Child>();

export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** The environment a child sees: ours without any Custos or database setting, plus `vars`. */
export function childEnv(vars: Record<string, string>): Record<string, string> {
  const base: Record<string, string> = {};
  for (const [k, v] of Object.entries(process.env))
    if (v !== undefined && !/^(CUSTOS_|DATABASE_|REDIS_URL$|TWIN_|NODE_OPTIONS$)/.test(k)) base[k] = v;
  return { ...base, ...vars };
}

/** Runs `node <args>` to completion; resolves its standard output, rejects with its standard error. */
export function runNode(args: readonly string[], env: Record<string, string>): Promise<string> {
  return new Promise((resolveRun, reject) => {
    const child = spawn(process.execPath, [...args], { cwd: ROOT, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d: Buffer) => (out += d.toString()));
    child.stderr.on('data', (d: Buffer) => (err += d.toString()));
    child.once('error', reject);
    child.once('exit', (code) => (code === 0 ? resolveRun(out) : reject(new Error(`node ${args.join(' ')} exited ${String(code)}: ${err.trim()}`))));
  });
}

async function waitHealthy(child: Child, timeoutMs: number): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child.process.exitCode !== null) throw new Error(`${child.name} exited ${child.process.exitCode}: ${child.stderr().trim()}`);
    try {
      const res = await fetch(`${child.url}/health`);
      if (res.ok) return;
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`${child.name} did not become healthy in ${timeoutMs} ms: ${child.stderr().trim()}`);
}

/** Starts `node [nodeFlags] script` listening on `port` and waits for GET /health. */
export async function startServer(opts: { name: string; script: string; port: number; env: Record<string, string>; nodeFlags?: readonly string[] }): Promise<Child> {
  const proc = spawn(process.execPath, [...(opts.nodeFlags ?? []), opts.script], { cwd: ROOT, env: opts.env, stdio: ['ignore', 'pipe', 'pipe'] });
  // The last few kB of what the server printed (its log goes to stdout), for error messages.
  let err = '';
  const keep = (d: Buffer) => {
    err = (err + d.toString()).slice(-8000);
  };
  proc.stdout?.on('data', keep);
  proc.stderr?.on('data', keep);
  const exited = new Promise<void>((r) => proc.once('exit', () => r()));
  const child: Child = {
    name: opts.name,
    url: `http://127.0.0.1:${opts.port}`,
    process: proc,
    stderr: () => err,
    async stop() {
      running.delete(child);
      if (proc.exitCode !== null || proc.signalCode !== null) return;
      proc.kill('SIGTERM');
      const timer = setTimeout(() => proc.kill('SIGKILL'), 15_000);
      await exited;
      clearTimeout(timer);
    },
  };
  running.add(child);
  try {
    await waitHealthy(child, 30_000);
  } catch (error) {
    await child.stop();
    throw error;
  }
  return child;
}

/** Stops every child still running (end of run, error, signal). */
export async function stopAll(): Promise<void> {
  await Promise.allSettled([...running].map((c) => c.stop()));
}

/**
 * A process's command name and CPU times from /proc/PID/stat, in clock ticks (1/100 s): its own
 * (utime + stime) and that of its children that ended (cutime + cstime). Throws off Linux or
 * once the process is gone.
 */
function procStat(pid: number | string): { name: string; own: number; children: number } {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const close = stat.lastIndexOf(')');
  const f = stat.slice(close + 2).split(' ');
  return { name: stat.slice(stat.indexOf('(') + 1, close), own: Number(f[11]) + Number(f[12]), children: Number(f[13]) + Number(f[14]) };
}

/** CPU time (user + system) a process has used, in clock ticks (1/100 s); undefined off Linux. */
export function cpuTicks(pid: number): number | undefined {
  try {
    return procStat(pid).own;
  } catch {
    return undefined;
  }
}

/**
 * CPU time (user + system, clock ticks) of every process with this command name, summed with
 * the time of their children that ended (cutime + cstime), so that a PostgreSQL backend whose
 * connection closed still counts, through the postmaster: the database work a request causes
 * outside the server process. Undefined off Linux.
 */
export function cpuTicksByName(name: string): number | undefined {
  let entries: string[];
  try {
    entries = readdirSync('/proc');
  } catch {
    return undefined;
  }
  let total = 0;
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const p = procStat(entry);
      if (p.name === name) total += p.own + p.children;
    } catch {
      // The process ended between the listing and the read.
    }
  }
  return total;
}

/**
 * Waits until a child has no more background work (audit chaining after a load, WAL
 * checkpoints): its CPU time must stay still for 300 ms (at most `maxMs`), so that one
 * server's leftovers never run during the other's measurement.
 */
export async function settle(child: Child, maxMs = 15_000): Promise<void> {
  const pid = child.process.pid;
  const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
  if (pid === undefined || cpuTicks(pid) === undefined) return sleep(1000);
  const until = Date.now() + maxMs;
  let last = cpuTicks(pid);
  while (Date.now() < until) {
    await sleep(300);
    const now = cpuTicks(pid);
    if (now === undefined || last === undefined || now - last <= 1) return;
    last = now;
  }
}
