import { AppError } from '../../../kernel/errors.ts';
import { IdentityErrors } from '../errors.ts';

/**
 * Admission to password work (sign-in, step-up, sign-up, password change and reset). At most
 * `max` run at once — about as many as argon2id can hash in parallel — and the rest wait in line,
 * in order, without touching the database or the CPU. A flood of sign-ins therefore turns into a
 * queue that drains at the hashing rate, instead of into work that competes with everything else
 * the service does (attempt counters, audit, vault reads): ASVS 6.2.x with the OWASP Password
 * Storage Cheat Sheet's advice to bound hashing, OWASP Denial of Service Cheat Sheet. While the
 * line is a flood (at least `floodAt` waiting), each slot rests after a task in proportion to how
 * long the task took, so that password work uses at most `floodShare` of its slots' time and the
 * rest of the service keeps its CPU; an ordinary busy moment runs at full speed. A caller who would wait longer than `maxWaitMs`, or find
 * the line full, is told IDENTITY_BUSY (503).
 */
export interface Gate {
  /** Runs `task` when admitted; a caller that goes away (`signal` aborts) while in line leaves it without running. */
  run<T>(task: () => Promise<T>, signal?: AbortSignal): Promise<T>;
  readonly active: number;
  readonly waiting: number;
}

export function createGate(
  limits: { max: number; queue: number; maxWaitMs: number; floodShare?: number; floodAt?: number },
  time: { now: () => number; rest: (ms: number, then: () => void) => void } = {
    now: () => performance.now(),
    rest: (ms, then) => void setTimeout(then, ms).unref(),
  },
): Gate {
  if (!Number.isInteger(limits.max) || limits.max < 1) throw new Error('gate max must be a positive integer');
  const share = limits.floodShare ?? 1;
  if (!(share > 0 && share <= 1)) throw new Error('gate floodShare must be in (0, 1]');
  let active = 0;
  const line: { admit: () => void; timer: NodeJS.Timeout; leave: () => void }[] = [];
  const busy = () => new AppError(IdentityErrors.IDENTITY_BUSY.code, IdentityErrors.IDENTITY_BUSY.status, 'too many password checks are waiting; try again shortly');

  function release(tookMs: number): void {
    const rest = line.length === 0 || line.length < (limits.floodAt ?? 1) ? 0 : tookMs * (1 / share - 1);
    if (rest >= 1) time.rest(rest, handOver);
    else handOver();
  }

  function handOver(): void {
    const next = line.shift();
    if (next === undefined) active -= 1;
    else {
      clearTimeout(next.timer);
      next.leave();
      next.admit(); // the slot passes straight to the next in line
    }
  }

  async function enter(signal: AbortSignal | undefined): Promise<void> {
    if (signal?.aborted === true) throw busy();
    if (active < limits.max) {
      active += 1;
      return;
    }
    if (line.length >= limits.queue) throw busy();
    await new Promise<void>((admit, reject) => {
      const drop = () => {
        const at = line.indexOf(entry);
        if (at >= 0) line.splice(at, 1);
        clearTimeout(entry.timer);
        entry.leave();
        reject(busy());
      };
      const entry = {
        admit,
        timer: setTimeout(drop, limits.maxWaitMs),
        leave: () => signal?.removeEventListener('abort', drop),
      };
      signal?.addEventListener('abort', drop, { once: true });
      line.push(entry);
    });
  }

  return {
    get active() {
      return active;
    },
    get waiting() {
      return line.length;
    },
    async run(task, signal) {
      await enter(signal);
      const started = time.now();
      try {
        return await task();
      } finally {
        release(time.now() - started);
      }
    },
  };
}
