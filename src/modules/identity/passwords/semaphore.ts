import { fail } from '../../../kernel/errors.ts';
import { IdentityErrors } from '../errors.ts';

/**
 * At most `max` expensive tasks at once, at most `queue` waiting; the next caller is refused with
 * IDENTITY_BUSY instead of queueing without bound. Password hashing is memory- and CPU-hard on
 * purpose, so a flood of sign-ins must meet a wall here rather than starve the rest of the service
 * (ASVS 6.2.x with OWASP Password Storage Cheat Sheet; DESIGN.md "bounded concurrency").
 */
export interface Semaphore {
  run<T>(task: () => Promise<T>): Promise<T>;
  readonly active: number;
  readonly waiting: number;
}

export function createSemaphore(limits: { max: number; queue: number }): Semaphore {
  if (!Number.isInteger(limits.max) || limits.max < 1) throw new Error('semaphore max must be a positive integer');
  if (!Number.isInteger(limits.queue) || limits.queue < 0) throw new Error('semaphore queue must be a non-negative integer');
  let active = 0;
  const waiters: (() => void)[] = [];

  function release(): void {
    const next = waiters.shift();
    if (next === undefined) active -= 1;
    else next(); // the slot passes straight to the next waiter
  }

  return {
    get active() {
      return active;
    },
    get waiting() {
      return waiters.length;
    },
    async run<T>(task: () => Promise<T>): Promise<T> {
      if (active < limits.max) active += 1;
      else if (waiters.length < limits.queue) await new Promise<void>((resolve) => waiters.push(resolve));
      else fail(IdentityErrors.IDENTITY_BUSY, 'too many password checks are waiting; try again shortly');
      try {
        return await task();
      } finally {
        release();
      }
    },
  };
}
