import { describe, expect, it } from 'vitest';
import { AppError } from '../../../kernel/errors.ts';
import { createGate } from './session-gate.ts';

/**
 * The admission gate in front of password work: never more than `max` at once however many
 * arrive together, the rest served in arrival order, and a clear IDENTITY_BUSY — never an endless
 * wait or an unbounded line — when the line is full or the wait too long.
 */
const deferred = () => {
  let resolve!: () => void;
  const promise = new Promise<void>((r) => (resolve = r));
  return { promise, resolve };
};

describe('password work admission', () => {
  it('runs at most max tasks at once and admits the rest in order', async () => {
    const gate = createGate({ max: 2, queue: 100, maxWaitMs: 10_000 });
    let running = 0;
    let peak = 0;
    const order: number[] = [];
    const tasks = Array.from({ length: 40 }, (_, i) =>
      gate.run(async () => {
        running += 1;
        peak = Math.max(peak, running);
        order.push(i);
        await new Promise((r) => setTimeout(r, 1));
        running -= 1;
      }),
    );
    await Promise.all(tasks);
    expect(peak).toBe(2);
    expect(order).toEqual([...order].sort((a, b) => a - b));
    expect(gate.active).toBe(0);
  });

  it('refuses with IDENTITY_BUSY when the line is full, and frees the slot when a task fails', async () => {
    const gate = createGate({ max: 1, queue: 1, maxWaitMs: 10_000 });
    const hold = deferred();
    const first = gate.run(() => hold.promise);
    const second = gate.run(async () => 'second');
    await expect(gate.run(async () => 'third')).rejects.toMatchObject({ code: 'IDENTITY_BUSY', status: 503 });
    hold.resolve();
    await first;
    expect(await second).toBe('second');
    await expect(gate.run(async () => Promise.reject(new Error('boom')))).rejects.toThrow('boom');
    expect(await gate.run(async () => 'after')).toBe('after');
  });

  it('rests between tasks only while others wait, in proportion to the task, so a flood gets a bounded share', async () => {
    let clock = 0;
    const rests: number[] = [];
    const pending: (() => void)[] = [];
    const gate = createGate(
      { max: 1, queue: 100, maxWaitMs: 10_000, floodShare: 0.25 },
      { now: () => clock, rest: (ms, then) => void (rests.push(ms), pending.push(then)) },
    );
    const task = (ms: number) => async () => {
      clock += ms;
    };
    await gate.run(task(20));
    expect(rests).toEqual([]); // alone: no rest
    const hold = deferred();
    const first = gate.run(async () => {
      await hold.promise;
      clock += 20;
    });
    const second = gate.run(task(40));
    const third = gate.run(task(10));
    hold.resolve();
    await first;
    // Someone waited: the slot rests three times the 20 ms the task took (share 1/4) before the next.
    expect(rests).toEqual([60]);
    expect(gate.active).toBe(1);
    pending.shift()!();
    await second;
    expect(rests).toEqual([60, 120]);
    pending.shift()!();
    await third;
    // The line is empty after the third: no rest, the slot is free at once.
    expect(rests).toEqual([60, 120]);
    expect(gate.active).toBe(0);
  });

  it('runs an ordinary busy moment at full speed: rests only once the line reaches floodAt', async () => {
    let clock = 0;
    const rests: number[] = [];
    const gate = createGate(
      { max: 1, queue: 100, maxWaitMs: 10_000, floodShare: 0.5, floodAt: 3 },
      { now: () => clock, rest: (ms, then) => void (rests.push(ms), then()) },
    );
    const task = async () => {
      clock += 10;
    };
    await Promise.all(Array.from({ length: 3 }, () => gate.run(task)));
    expect(rests).toEqual([]);
    await Promise.all(Array.from({ length: 5 }, () => gate.run(task)));
    // Five arrive at once: one runs, four wait; rests while three or more still wait.
    expect(rests).toEqual([10, 10]);
  });

  it('lets a caller who went away leave the line without running its task', async () => {
    const gate = createGate({ max: 1, queue: 10, maxWaitMs: 10_000 });
    const hold = deferred();
    const first = gate.run(() => hold.promise);
    const gone = new AbortController();
    let ran = false;
    const abandoned = gate.run(async () => {
      ran = true;
    }, gone.signal);
    const kept = gate.run(async () => 'kept');
    gone.abort();
    await expect(abandoned).rejects.toMatchObject({ code: 'IDENTITY_BUSY' });
    expect(gate.waiting).toBe(1);
    hold.resolve();
    await first;
    expect(await kept).toBe('kept');
    expect(ran).toBe(false);
  });

  it('gives up on a wait longer than maxWaitMs without running the task', async () => {
    const gate = createGate({ max: 1, queue: 10, maxWaitMs: 20 });
    const hold = deferred();
    const first = gate.run(() => hold.promise);
    let ran = false;
    const late = gate.run(async () => {
      ran = true;
    });
    await expect(late).rejects.toBeInstanceOf(AppError);
    expect(gate.waiting).toBe(0);
    hold.resolve();
    await first;
    expect(ran).toBe(false);
    expect(gate.active).toBe(0);
  });
});
