import { describe, expect, it } from 'vitest';
import { createSimulatedClock, flushMicrotasks } from '../../src/runtime/clock.js';
import { createMessageQueue } from '../../src/runtime/message-queue.js';

describe('createMessageQueue', () => {
  it('handles messages in order on a later microtask, never inside push', async () => {
    const seen: number[] = [];
    const queue = createMessageQueue<number>(
      (m) => void seen.push(m),
      () => {},
    );
    queue.push(1);
    queue.push(2);
    expect(seen).toEqual([]);
    expect(queue.length).toBe(2);
    await flushMicrotasks();
    expect(seen).toEqual([1, 2]);
    expect(queue.length).toBe(0);
  });

  it('an async handler holds the next message until its promise settles', async () => {
    const clock = createSimulatedClock();
    const log: string[] = [];
    let inFlight = 0;
    let maxInFlight = 0;
    const queue = createMessageQueue<string>(
      (m) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        log.push(`start:${m}`);
        return new Promise<void>((resolve) =>
          clock.setTimeout(() => {
            log.push(`end:${m}`);
            inFlight--;
            resolve();
          }, 100),
        );
      },
      () => {},
    );
    queue.push('a');
    queue.push('b');
    queue.push('c');
    await clock.advanceAsync(250);
    expect(log).toEqual(['start:a', 'end:a', 'start:b', 'end:b', 'start:c']);
    await clock.advanceAsync(50);
    expect(log.at(-1)).toBe('end:c');
    expect(maxInFlight).toBe(1);
  });

  it('a handler that throws or rejects goes to onError and the next message is still handled', async () => {
    const errors: string[] = [];
    const seen: string[] = [];
    const queue = createMessageQueue<string>(
      (m) => {
        if (m === 'throw') throw new Error('sync');
        if (m === 'reject') return Promise.reject(new Error('async'));
        seen.push(m);
      },
      (error, m) => errors.push(`${m}:${(error as Error).message}`),
    );
    for (const m of ['a', 'throw', 'b', 'reject', 'c']) queue.push(m);
    await flushMicrotasks();
    expect(seen).toEqual(['a', 'b', 'c']);
    expect(errors).toEqual(['throw:sync', 'reject:async']);
  });

  it('close returns what is still queued, refuses new messages, and idle waits for the one in flight', async () => {
    const clock = createSimulatedClock();
    const seen: string[] = [];
    const queue = createMessageQueue<string>(
      (m) =>
        new Promise<void>((resolve) =>
          clock.setTimeout(() => {
            seen.push(m);
            resolve();
          }, 100),
        ),
      () => {},
    );
    queue.push('a');
    queue.push('b');
    queue.push('c');
    await flushMicrotasks(); // 'a' is in flight
    expect(queue.close()).toEqual(['b', 'c']);
    expect(queue.closed).toBe(true);
    expect(queue.push('d')).toBe(false);
    let idle = false;
    void queue.idle().then(() => {
      idle = true;
    });
    await clock.advanceAsync(99);
    expect(idle).toBe(false);
    await clock.advanceAsync(1);
    expect(idle).toBe(true);
    expect(seen).toEqual(['a']);
    await clock.advanceAsync(1000);
    expect(seen).toEqual(['a']);
  });

  it('idle resolves at once when nothing is being handled', async () => {
    const queue = createMessageQueue<number>(
      () => {},
      () => {},
    );
    await expect(queue.idle()).resolves.toBeUndefined();
  });

  it('keeps order over a long queue (the head index is compacted as it drains)', async () => {
    const seen: number[] = [];
    const queue = createMessageQueue<number>(
      (m) => {
        seen.push(m);
        // Push more while draining, so the head never reaches the end before compaction.
        if (m < 5000) queue.push(m + 5000);
      },
      () => {},
    );
    for (let i = 0; i < 5000; i++) queue.push(i);
    await flushMicrotasks();
    expect(seen).toHaveLength(10_000);
    expect(seen.slice(0, 5000)).toEqual(Array.from({ length: 5000 }, (_, i) => i));
    expect(seen.slice(5000)).toEqual(Array.from({ length: 5000 }, (_, i) => i + 5000));
  });

  it('undefined is a message like any other', async () => {
    const seen: unknown[] = [];
    const queue = createMessageQueue<undefined | number>(
      (m) => void seen.push(m),
      () => {},
    );
    queue.push(undefined);
    queue.push(1);
    await flushMicrotasks();
    expect(seen).toEqual([undefined, 1]);
  });
});
