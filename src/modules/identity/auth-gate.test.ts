import { describe, expect, it } from 'vitest';
import { AppError } from '../../kernel/errors.ts';
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
