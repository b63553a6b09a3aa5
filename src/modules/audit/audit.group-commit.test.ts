import { describe, expect, it } from 'vitest';
import { createGroupCommit } from './group-commit.ts';

/*
 * The queue logic of group commit, on its own: the storage behind it is exercised by the chain
 * and concurrency tests on SQLite and PostgreSQL; here `write` records the batches it is given.
 */
function recorder(opts: { fail?: (batch: number[]) => boolean; delayMs?: number } = {}) {
  const batches: number[][] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const write = async (batch: number[]) => {
    inFlight += 1;
    maxInFlight = Math.max(maxInFlight, inFlight);
    batches.push(batch);
    await new Promise((r) => setTimeout(r, opts.delayMs ?? 1));
    inFlight -= 1;
    if (opts.fail?.(batch) === true) throw new Error('batch failed');
  };
  return { batches, write, maxInFlight: () => maxInFlight };
}

/** A writer that holds its first batch until `release()` and writes every later one at once. */
function holdingFirst() {
  const batches: number[][] = [];
  let release: () => void = () => undefined;
  const write = (batch: number[]) => {
    batches.push(batch);
    return batches.length === 1 ? new Promise<void>((resolve) => (release = resolve)) : Promise.resolve();
  };
  return { batches, write, release: () => release() };
}

describe('group commit', () => {
  it('writes concurrent items in few batches, each item exactly once, in order', async () => {
    const r = recorder({ delayMs: 3 });
    const g = createGroupCommit({ write: r.write, flushMs: 2, batchSize: 50, maxInFlight: 2 });
    await Promise.all(Array.from({ length: 400 }, (_, i) => g.push(i)));
    expect(r.batches.flat()).toEqual(Array.from({ length: 400 }, (_, i) => i));
    expect(r.batches.length).toBeLessThanOrEqual(12);
    expect(Math.max(...r.batches.map((b) => b.length))).toBeLessThanOrEqual(50);
    expect(r.maxInFlight()).toBeLessThanOrEqual(2);
  });

  it('flushes a lone item after flushMs without waiting for a full batch', async () => {
    const r = recorder();
    const g = createGroupCommit({ write: r.write, flushMs: 1, batchSize: 1000, maxInFlight: 1 });
    await g.push(7);
    expect(r.batches).toEqual([[7]]);
  });

  it('resolves a caller only after its batch was written', async () => {
    let release: () => void = () => undefined;
    const gate = new Promise<void>((resolve) => {
      release = resolve;
    });
    const g = createGroupCommit<number>({ write: () => gate, flushMs: 0, batchSize: 10, maxInFlight: 1 });
    let settled = false;
    const p = g.push(1).then(() => {
      settled = true;
    });
    await new Promise((r) => setTimeout(r, 20));
    expect(settled).toBe(false);
    release();
    await p;
    expect(settled).toBe(true);
  });

  it('rejects every caller of a failed batch, and only them', async () => {
    const r = recorder({ fail: (batch) => batch.includes(3) });
    const g = createGroupCommit({ write: r.write, flushMs: 1, batchSize: 5, maxInFlight: 1 });
    const results = await Promise.allSettled(Array.from({ length: 10 }, (_, i) => g.push(i)));
    const failedBatch = r.batches.find((b) => b.includes(3)) ?? [];
    results.forEach((res, i) => expect(res.status).toBe(failedBatch.includes(i) ? 'rejected' : 'fulfilled'));
    expect(failedBatch.length).toBeGreaterThan(0);
  });

  it('while a batch is in flight, starts another only at minBatch items or after flushMs, and sends the rest when it ends', async () => {
    const { batches, write, release } = holdingFirst();
    const g = createGroupCommit<number>({ write, flushMs: 60_000, batchSize: 100, maxInFlight: 2, minBatch: 4 });
    const settled: Promise<void>[] = [g.push(0)];
    await new Promise((r) => setImmediate(r));
    expect(batches).toEqual([[0]]);
    // Three wait: fewer than minBatch, and flushMs is far away.
    for (const i of [1, 2, 3]) settled.push(g.push(i));
    await new Promise((r) => setTimeout(r, 20));
    expect(batches).toEqual([[0]]);
    // The fourth makes minBatch: a second batch starts alongside the first.
    settled.push(g.push(4));
    expect(batches).toEqual([[0], [1, 2, 3, 4]]);
    // Fewer than minBatch wait again, until the first batch ends.
    settled.push(g.push(5));
    await new Promise((r) => setTimeout(r, 20));
    expect(batches).toHaveLength(2);
    release();
    await Promise.all(settled);
    expect(batches).toEqual([[0], [1, 2, 3, 4], [5]]);
  });

  it('while a batch is in flight, sends fewer than minBatch items once they waited flushMs', async () => {
    const { batches, write, release } = holdingFirst();
    const g = createGroupCommit<number>({ write, flushMs: 5, batchSize: 100, maxInFlight: 2, minBatch: 32 });
    const first = g.push(0);
    await new Promise((r) => setImmediate(r));
    const second = g.push(1);
    await new Promise((r) => setTimeout(r, 50));
    expect(batches).toEqual([[0], [1]]);
    await second;
    release();
    await first;
  });

  it('drain() writes what is queued and waits for it', async () => {
    const r = recorder({ delayMs: 5 });
    const g = createGroupCommit({ write: r.write, flushMs: 500, batchSize: 1000, maxInFlight: 1 });
    const pushes = [g.push(1), g.push(2)];
    await g.drain();
    expect(r.batches).toEqual([[1, 2]]);
    expect(g.queued).toBe(0);
    await Promise.all(pushes);
  });
});
