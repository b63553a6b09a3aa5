import { setTimeout as sleep } from 'node:timers/promises';

/**
 * Bounded retries with backoff for calls to other systems (webhooks, mail servers, message
 * brokers). The schedule is explicit, so a caller says how long it is willing to keep trying;
 * each wait gets ±20 % random jitter, so that many senders that failed together do not retry
 * together (Standard Webhooks 1.0.0, "Deliverability and reliability"). An abort signal ends the
 * waiting at once (shutdown).
 */
export interface RetryOptions {
  /** Waits before the 2nd, 3rd, … attempt, in ms; its length + 1 is the number of attempts. */
  readonly delaysMs: readonly number[];
  /** Whether a failure is worth another attempt; a permanent one is thrown at once. */
  readonly retryable: (error: unknown) => boolean;
  /** A wait the other side asked for (HTTP Retry-After), in ms; the longer of it and the schedule's is taken. */
  readonly retryAfterMs?: ((error: unknown) => number | undefined) | undefined;
  /** Called before each wait (for a log line: never personal data). */
  readonly onRetry?: ((error: unknown, attempt: number, waitMs: number) => void) | undefined;
  readonly signal?: AbortSignal | undefined;
  /** Random share added or taken off each wait; 0.2 unless given. */
  readonly jitter?: number | undefined;
}

export async function withRetries<T>(attempt: (n: number) => Promise<T>, options: RetryOptions): Promise<T> {
  const jitter = options.jitter ?? 0.2;
  for (let n = 1; ; n++) {
    options.signal?.throwIfAborted();
    try {
      return await attempt(n);
    } catch (error) {
      const scheduled = options.delaysMs[n - 1];
      if (scheduled === undefined || !options.retryable(error) || options.signal?.aborted === true) throw error;
      const asked = options.retryAfterMs?.(error) ?? 0;
      const wait = Math.round(Math.max(asked, scheduled * (1 + jitter * (2 * Math.random() - 1))));
      options.onRetry?.(error, n, wait);
      try {
        await sleep(wait, undefined, options.signal === undefined ? {} : { signal: options.signal });
      } catch {
        throw error;
      }
    }
  }
}
