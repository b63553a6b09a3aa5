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
