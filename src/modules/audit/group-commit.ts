/**
 * Group commit: callers push items and wait; a flusher writes everything queued with ONE call of
 * `write` (one multi-row statement, one commit) after `flushMs` or as soon as `batchSize` items
 * wait, whichever comes first. Each caller's promise settles with its batch: resolved once the
 * batch committed, rejected if it failed. At most `maxInFlight` batches are written at once; while
 * that many are in flight, new items gather into the next, larger batch (the classic group-commit
 * effect: the slower the disk, the bigger the batches).
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
}): GroupCommit<T> {
  let queue: Waiting<T>[] = [];
  let timer: NodeJS.Timeout | undefined;
  let due = false;
  let inFlight = 0;
  const running = new Set<Promise<void>>();

  function flush(): void {
    if (timer !== undefined) {
      clearTimeout(timer);
      timer = undefined;
    }
    due = false;
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
      afterBatch();
    });
    if (queue.length > 0) schedule();
  }

  function afterBatch(): void {
    if (queue.length === 0) {
      due = false;
      return;
    }
    if (inFlight >= opts.maxInFlight) return;
    if (due || queue.length >= opts.batchSize) flush();
    else schedule();
  }

  function onTimer(): void {
    timer = undefined;
    if (queue.length === 0) return;
    if (inFlight < opts.maxInFlight) flush();
    else due = true;
  }

  function schedule(): void {
    if (queue.length === 0 || inFlight >= opts.maxInFlight) return;
    if (queue.length >= opts.batchSize) flush();
    else if (timer === undefined && !due) timer = setTimeout(onTimer, opts.flushMs);
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
