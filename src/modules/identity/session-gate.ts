import { fail } from '../../kernel/errors.ts';
import { IdentityErrors } from './errors.ts';

/**
 * Admission to password work (sign-in, step-up, sign-up, password change and reset). At most
 * `max` run at once — about as many as argon2id can hash in parallel — and the rest wait in line,
 * in order, without touching the database or the CPU. A flood of sign-ins therefore turns into a
 * queue that drains at the hashing rate, instead of into work that competes with everything else
 * the service does (attempt counters, audit, vault reads): ASVS 6.2.x with the OWASP Password
 * Storage Cheat Sheet's advice to bound hashing, OWASP Denial of Service Cheat Sheet. A caller who
 * would wait longer than `maxWaitMs`, or find the line full, is told IDENTITY_BUSY (503).
 */
export interface Gate {
  run<T>(task: () => Promise<T>): Promise<T>;
  readonly active: number;
  readonly waiting: number;
}

export function createGate(limits: { max: number; queue: number; maxWaitMs: number }): Gate {
  if (!Number.isInteger(limits.max) || limits.max < 1) throw new Error('gate max must be a positive integer');
  let active = 0;
  const line: { admit: () => void; timer: NodeJS.Timeout }[] = [];

  function release(): void {
    const next = line.shift();
    if (next === undefined) active -= 1;
    else {
      clearTimeout(next.timer);
      next.admit(); // the slot passes straight to the next in line
    }
  }

  async function enter(): Promise<void> {
    if (active < limits.max) {
      active += 1;
      return;
    }
    if (line.length >= limits.queue) fail(IdentityErrors.IDENTITY_BUSY, 'too many password checks are waiting; try again shortly');
    await new Promise<void>((admit, reject) => {
      const entry = {
        admit,
        timer: setTimeout(() => {
          const at = line.indexOf(entry);
          if (at >= 0) line.splice(at, 1);
          try {
            fail(IdentityErrors.IDENTITY_BUSY, 'too many password checks are waiting; try again shortly');
          } catch (error) {
            reject(error);
          }
        }, limits.maxWaitMs),
      };
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
    async run(task) {
      await enter();
      try {
        return await task();
      } finally {
        release();
      }
    },
  };
}
