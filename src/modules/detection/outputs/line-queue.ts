import type { Logger } from '../../../kernel/logger.ts';

/**
 * The queue behind the OCSF sinks (file, syslog): `push` never waits and never throws, so a slow
 * disk or a syslog server that is down cannot slow a request. Lines wait in a bounded queue and
 * are written in batches by one background loop; when the queue is full a line is dropped and
 * counted, and the count is logged (at most every 10 s) — losing log lines is better than holding
 * requests or memory. A failed write keeps its batch, closes the connection or file (`reset`) and
 * is tried again after a growing wait (0.5 s doubling to 30 s), so the sink reconnects by itself.
 */
export const LINE_QUEUE_CAPACITY = 10_000;
const BATCH = 256;
const DROP_REPORT_MS = 10_000;

export interface LineQueueOptions {
  /** For log lines: `ocsf-file`, `syslog`. */
  readonly name: string;
  /** Writes one batch in order; throws when it could not. */
  readonly write: (lines: readonly Buffer[]) => Promise<void>;
  /** Called after a failed write, before the wait: drop the file handle or socket so the next write opens a new one. */
  readonly reset?: (() => void) | undefined;
  readonly capacity?: number | undefined;
  readonly logger?: Logger | undefined;
  readonly backoffMs?: { readonly min: number; readonly max: number } | undefined;
}

export interface LineQueue {
  /** Queues a line; false when it was dropped (queue full, or closed). */
  push(line: Buffer): boolean;
  /** Lines dropped so far. */
  readonly dropped: number;
  /** Lines waiting. */
  readonly queued: number;
  /** Waits until every line queued so far is written, or `timeoutMs` passes; true when all were written. */
  flush(timeoutMs?: number): Promise<boolean>;
  /** Flushes for up to `timeoutMs`, then drops what is left (counted and logged) and stops; the sink closes its file or socket after. */
  close(timeoutMs?: number): Promise<void>;
}

export function createLineQueue(options: LineQueueOptions): LineQueue {
  const capacity = options.capacity ?? LINE_QUEUE_CAPACITY;
  const backoff = options.backoffMs ?? { min: 500, max: 30_000 };
  const log = options.logger;
  let queue: Buffer[] = [];
  let running = false;
  let closed = false;
  let dropped = 0;
  let reported = 0;
  let lastReport = 0;
  let failures = 0;
  let wake: (() => void) | undefined;
  let idle: (() => void)[] = [];
  /** Set when close gave up waiting: the loop ends after the write in progress. */
  let stopped = false;

  const reportDrops = (force = false) => {
    if (dropped === reported || (!force && Date.now() - lastReport < DROP_REPORT_MS)) return;
    log?.warn({ sink: options.name, dropped: dropped - reported, dropped_total: dropped }, 'OCSF records dropped: the queue was full or the sink closed');
    reported = dropped;
    lastReport = Date.now();
  };

  const pause = (ms: number) =>
    new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        resolve();
      };
    }).finally(() => {
      wake = undefined;
    });

  async function loop(): Promise<void> {
    while (queue.length > 0 && !stopped) {
      const batch = queue.slice(0, BATCH);
      try {
        await options.write(batch);
        queue.splice(0, batch.length);
        if (failures > 0) log?.info({ sink: options.name, failures }, 'OCSF sink writing again');
        failures = 0;
        reportDrops();
      } catch (error) {
        failures++;
        options.reset?.();
        if (failures === 1) log?.warn({ sink: options.name, code: (error as { code?: unknown }).code }, 'OCSF sink cannot write; retrying');
        if (stopped) break;
        await pause(Math.min(backoff.max, backoff.min * 2 ** (failures - 1)));
      }
    }
    running = false;
    const waiting = idle;
    idle = [];
    for (const done of waiting) done();
  }

  const kick = () => {
    if (running) return;
    running = true;
    setImmediate(() => void loop());
  };

  const flush = async (timeoutMs = 5_000): Promise<boolean> => {
    if (queue.length === 0 && !running) return true;
    let timer: NodeJS.Timeout | undefined;
    const done = new Promise<boolean>((resolve) => idle.push(() => resolve(queue.length === 0)));
    const late = new Promise<boolean>((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    kick();
    try {
      return await Promise.race([done, late]);
    } finally {
      clearTimeout(timer);
    }
  };

  return {
    push(line) {
      if (closed || queue.length >= capacity) {
        dropped++;
        reportDrops();
        return false;
      }
      queue.push(line);
      kick();
      return true;
    },
    get dropped() {
      return dropped;
    },
    get queued() {
      return queue.length;
    },
    flush,
    async close(timeoutMs = 5_000) {
      closed = true;
      wake?.();
      const all = await flush(timeoutMs);
      if (!all) {
        stopped = true;
        wake?.();
        dropped += queue.length;
        queue = [];
      }
      reportDrops(true);
    },
  };
}

/** A record as text (JSON unless `format` says otherwise), or undefined (logged) when it cannot be serialised: a sink's `write` never throws at its caller. */
export function serialise(
  record: Readonly<Record<string, unknown>>,
  logger?: Logger,
  format: (record: Readonly<Record<string, unknown>>) => string = JSON.stringify,
): string | undefined {
  try {
    return format(record);
  } catch {
    logger?.warn({ class_uid: record.class_uid }, 'an OCSF record could not be serialised and was left out');
    return undefined;
  }
}
