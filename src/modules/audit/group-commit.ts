/**
 * Group commit: callers push items and wait; a flusher writes everything queued with ONE call of
 * `write` (one multi-row statement, one commit). Each caller's promise settles with its batch:
 * resolved once the batch committed, rejected if it failed.
 *
 * When nothing is being written, the queue is written at the end of the current event-loop turn
 * (so an idle server adds no wait). While a batch is being written, new items gather and are
 * written the moment it finishes (the slower the disk, the bigger the batches); a further batch
 * starts alongside only once `minBatch` items are waiting or the oldest has waited `flushMs`,
 * and never more than `maxInFlight` at once, nor more than `batchSize` items in one.
 */
export interface GroupCommit<T> {
  push(item: T): Promise<void>;
  /** Writes everything queued and waits for every batch in flight. */
  drain(): Promise<void>;
  readonly queued: number;
}

interface Waiting<T> {
  item: T;
  resolve: () => void;
  reject: (error: unknown) => void;
}

export function createGroupCommit<T>(opts: {
  write: (batch: T[]) => Promise<void>;
  flushMs: number;
  batchSize: number;
  maxInFlight: number;
  /** Items that start a batch alongside one being written without waiting `flushMs` (default 1). */
  minBatch?: number;
}): GroupCommit<T> {
  const minBatch = Math.max(1, opts.minBatch ?? 1);
  let queue: Waiting<T>[] = [];
  let timer: NodeJS.Timeout | undefined;
  let soon: NodeJS.Immediate | undefined;
  let inFlight = 0;
  const running = new Set<Promise<void>>();

  function disarm(): void {
    if (timer !== undefined) clearTimeout(timer);
    if (soon !== undefined) clearImmediate(soon);
    timer = undefined;
    soon = undefined;
  }

  function flush(): void {
    disarm();
    const batch = queue.length <= opts.batchSize ? queue : queue.slice(0, opts.batchSize);
    queue = queue.length <= opts.batchSize ? [] : queue.slice(opts.batchSize);
    inFlight += 1;
    const done = (async () => {
      try {
        await opts.write(batch.map((w) => w.item));
        for (const w of batch) w.resolve();
      } catch (error) {
        for (const w of batch) w.reject(error);
      } finally {
        inFlight -= 1;
      }
    })();
    running.add(done);
    void done.then(() => {
      running.delete(done);
      // What queued meanwhile has waited a whole commit already: write it now, unless another
      // batch is still being written and this one would be smaller than minBatch.
      if (queue.length > 0 && inFlight < opts.maxInFlight && (inFlight === 0 || queue.length >= minBatch)) flush();
      else schedule();
    });
    schedule();
  }

  function onTimer(): void {
    timer = undefined;
    if (queue.length > 0 && inFlight < opts.maxInFlight) flush();
  }

  function schedule(): void {
    if (queue.length === 0 || inFlight >= opts.maxInFlight) return;
    if (queue.length >= opts.batchSize) flush();
    else if (inFlight === 0) soon ??= setImmediate(flush);
    else if (queue.length >= minBatch) flush();
    else timer ??= setTimeout(onTimer, opts.flushMs);
  }

  return {
    push(item) {
      return new Promise<void>((resolve, reject) => {
        queue.push({ item, resolve, reject });
        schedule();
      });
    },
    async drain() {
      while (queue.length > 0 || running.size > 0) {
        if (queue.length > 0 && inFlight < opts.maxInFlight) flush();
        await Promise.allSettled([...running]);
      }
    },
    get queued() {
      return queue.length;
    },
  };
}
