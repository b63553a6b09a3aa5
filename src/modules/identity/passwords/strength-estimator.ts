import { Worker } from 'node:worker_threads';
import { z } from 'zod';
import { fail } from '../../../kernel/errors.ts';
import { IdentityErrors } from '../errors.ts';
import type { PasswordStrength } from './password-strength.ts';

/**
 * Runs zxcvbn-ts in one worker thread, started on first use and not keeping the process alive.
 * Estimating costs tens of milliseconds of CPU per password, so a flood of sign-ups on the request
 * thread would stall every other request; here at most `queue` estimates wait and the next caller
 * gets IDENTITY_BUSY (bounded concurrency, DESIGN.md "Security defaults").
 */
export interface StrengthEstimator {
  estimate(password: string, userInputs: readonly string[]): Promise<PasswordStrength>;
  close(): Promise<void>;
}

const Reply = z.union([
  z.object({
    id: z.number(),
    ok: z.literal(true),
    strength: z.object({
      score: z.union([z.literal(0), z.literal(1), z.literal(2), z.literal(3), z.literal(4)]),
      guesses_log10: z.number(),
      warning: z.string().nullable(),
      suggestions: z.array(z.string()),
    }),
  }),
  z.object({ id: z.number(), ok: z.literal(false) }),
]);

type Pending = { resolve: (s: PasswordStrength) => void; reject: (e: Error) => void };

const workerUrl = new URL(import.meta.url.endsWith('.ts') ? './strength-worker.ts' : './strength-worker.js', import.meta.url);

export function createStrengthEstimator(options: { queue?: number } = {}): StrengthEstimator {
  const queue = options.queue ?? 64;
  const pending = new Map<number, Pending>();
  let worker: Worker | undefined;
  let nextId = 1;

  function failAll(error: Error): void {
    for (const p of pending.values()) p.reject(error);
    pending.clear();
  }

  function start(): Worker {
    if (worker !== undefined) return worker;
    const w = new Worker(workerUrl);
    w.unref();
    w.on('message', (message: unknown) => {
      const reply = Reply.safeParse(message);
      if (!reply.success) return;
      const p = pending.get(reply.data.id);
      if (p === undefined) return;
      pending.delete(reply.data.id);
      if (reply.data.ok) p.resolve(reply.data.strength);
      else p.reject(new Error('the strength estimate failed'));
    });
    w.on('error', (error) => {
      worker = undefined;
      failAll(error);
    });
    w.on('exit', () => {
      worker = undefined;
      failAll(new Error('the strength estimator stopped'));
    });
    worker = w;
    return w;
  }

  return {
    async estimate(password, userInputs) {
      if (pending.size >= queue) fail(IdentityErrors.IDENTITY_BUSY, 'too many password strength estimates are waiting');
      const w = start();
      const id = nextId++;
      return new Promise<PasswordStrength>((resolve, reject) => {
        pending.set(id, { resolve, reject });
        w.postMessage({ id, password, userInputs: [...userInputs] });
      });
    },
    async close() {
      const w = worker;
      worker = undefined;
      if (w !== undefined) await w.terminate();
    },
  };
}
