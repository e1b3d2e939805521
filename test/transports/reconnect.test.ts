/** The shared backoff and reconnect schedule, on a simulated clock. */
import { describe, expect, it } from 'vitest';
import { createSimulatedClock } from '../../src/runtime/clock.js';
import { createRuntime } from '../../src/runtime/runtime.js';
import {
  backoffDelayMs,
  DEFAULT_RECONNECT,
  ReconnectSchedule,
  reconnectSchema,
  resolveReconnect,
} from '../../src/transports/reconnect.js';

describe('backoffDelayMs', () => {
  it.each([
    [0, 0, 500],
    [1, 0, 1000],
    [3, 0.5, 3000],
    [6, 0, 30_000],
    [40, 0, 30_000],
    [40, 0.999, 15_015],
    [-3, 0, 500],
  ])('attempt %i with random %f waits %i ms', (attempt, random, expected) => {
    expect(backoffDelayMs(attempt, DEFAULT_RECONNECT, () => random)).toBe(expected);
  });
});

describe('resolveReconnect and reconnectSchema', () => {
  it('fills the defaults and refuses bad fields', () => {
    expect(resolveReconnect({ initialMs: 50 })).toEqual({ ...DEFAULT_RECONNECT, initialMs: 50 });
    expect(resolveReconnect(undefined)).toEqual(DEFAULT_RECONNECT);
    expect(reconnectSchema.safeParse({ jitter: 1.5 }).success).toBe(false);
    expect(reconnectSchema.safeParse({ initialMs: 0 }).success).toBe(false);
    expect(reconnectSchema.safeParse({ maxMs: 100, stableMs: 10 }).success).toBe(true);
  });
});

describe('ReconnectSchedule', () => {
  function setup() {
    const clock = createSimulatedClock();
    const rt = createRuntime({ clock });
    const options = resolveReconnect({ initialMs: 100, maxMs: 800, jitter: 0, stableMs: 1000 });
    return { clock, rt, schedule: new ReconnectSchedule(rt, 7, options, () => 0, 'test') };
  }

  it('grows the delay on every drop, capped, and runs the retry on its timer', () => {
    const { clock, rt, schedule } = setup();
    expect([1, 2, 3, 4, 5].map(() => schedule.nextDelay())).toEqual([100, 200, 400, 800, 800]);
    expect(schedule.attempts).toBe(5);
    let retried = 0;
    schedule.retryIn(800, () => retried++);
    expect(schedule.retrying).toBe(true);
    expect(rt.timers.ownedBy(7).map((t) => t.label)).toEqual(['test.reconnect']);
    clock.advance(799);
    expect(retried).toBe(0);
    clock.advance(1);
    expect(retried).toBe(1);
    expect(schedule.retrying).toBe(false);
  });

  it('forgets the failures only after a connection lasted stableMs; a drop before that keeps growing', () => {
    const { clock, schedule } = setup();
    schedule.nextDelay();
    schedule.nextDelay();
    schedule.connected();
    clock.advance(500);
    expect(schedule.nextDelay()).toBe(400); // dropped before stableMs: still growing
    clock.advance(2000); // the stable timer of the dropped connection must not reset it
    expect(schedule.attempts).toBe(3);
    schedule.connected();
    clock.advance(1000);
    expect(schedule.attempts).toBe(0);
    expect(schedule.nextDelay()).toBe(100);
  });

  it('reset() starts from the first delay; cancel() leaves no timer behind', () => {
    const { rt, schedule } = setup();
    schedule.nextDelay();
    schedule.nextDelay();
    schedule.reset();
    expect(schedule.nextDelay()).toBe(100);
    schedule.connected();
    schedule.retryIn(100, () => {});
    expect(rt.timers.ownedBy(7)).toHaveLength(2);
    schedule.cancel();
    expect(rt.timers.ownedBy(7)).toEqual([]);
  });
});
