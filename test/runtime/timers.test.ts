import { describe, expect, it } from 'vitest';
import { createSimulatedClock, flushMicrotasks } from '../../src/runtime/clock.js';
import { createTimerService, TimerEntry } from '../../src/runtime/timers.js';

function setup() {
  const clock = createSimulatedClock();
  return { clock, timers: createTimerService(clock) };
}

describe('createTimerService', () => {
  it('fires due timers in deadline order on one host timer, with their meta', () => {
    const { clock, timers } = setup();
    const log: string[] = [];
    timers.schedule(300, () => log.push('c'));
    const a = timers.schedule(100, () => log.push('a'), { owner: 4, label: 'connect' });
    timers.schedule(200, () => log.push('b'));
    expect(a).toMatchObject({ owner: 4, label: 'connect', deadlineMs: 100, delayMs: 100 });
    expect(a.wallDeadlineMs).toBe(clock.wallNow() + 100);
    expect(clock.pending()).toBe(1);
    clock.advance(250);
    expect(log).toEqual(['a', 'b']);
    expect(timers.size()).toBe(1);
    clock.advance(50);
    expect(log).toEqual(['a', 'b', 'c']);
    expect(timers.size()).toBe(0);
    expect(clock.pending()).toBe(0);
  });

  it('cancel is once: a cancelled timer never fires and is no longer pending', () => {
    const { clock, timers } = setup();
    const log: string[] = [];
    const ref = timers.schedule(100, () => log.push('x'));
    expect(timers.isPending(ref)).toBe(true);
    expect(timers.cancel(ref)).toBe(true);
    expect(timers.cancel(ref)).toBe(false);
    expect(timers.isPending(ref)).toBe(false);
    clock.advance(1000);
    expect(log).toEqual([]);
  });

  it('a negative, zero or non-finite delay fires at the next host turn', () => {
    const { clock, timers } = setup();
    const log: number[] = [];
    for (const d of [-5, 0, Number.NaN]) timers.schedule(d, () => log.push(d));
    clock.advance(0);
    expect(log).toEqual([-5, 0, Number.NaN]);
  });

  it('a callback may cancel or arm timers; one due now fires in the same turn', () => {
    const { clock, timers } = setup();
    const log: string[] = [];
    timers.schedule(100, () => {
      log.push('first');
      timers.cancel(later);
      timers.schedule(0, () => log.push('now'));
    });
    const later = timers.schedule(100, () => log.push('later'));
    timers.schedule(100, () => log.push('also'));
    clock.advance(100);
    expect(log).toEqual(['first', 'also', 'now']);
    expect(timers.size()).toBe(0);
  });

  it('a re-armed timeout leaves no pile of dead entries behind', () => {
    const { clock, timers } = setup();
    let fired = 0;
    let ref = timers.schedule(1000, () => fired++);
    for (let i = 0; i < 10_000; i++) {
      timers.cancel(ref);
      ref = timers.schedule(1000, () => fired++);
    }
    expect(timers.size()).toBe(1);
    clock.advance(1000);
    expect(fired).toBe(1);
    expect(timers.size()).toBe(0);
  });

  it('arms a caller-made entry and calls its onTimer', () => {
    const { clock, timers } = setup();
    class Ping extends TimerEntry {
      hits = 0;
      onTimer() {
        this.hits++;
      }
    }
    const ping = timers.arm(new Ping(), 50, 9, 'state');
    expect(timers.ownedBy(9)).toEqual([
      { owner: 9, label: 'state', deadlineMs: 50, wallDeadlineMs: clock.wallNow() + 50, delayMs: 50 },
    ]);
    clock.advance(50);
    expect(ping.hits).toBe(1);
    expect(timers.ownedBy(9)).toEqual([]);
  });

  it('a throwing callback does not stop the others; its error is rethrown on a microtask', async () => {
    const { clock, timers } = setup();
    const log: string[] = [];
    const thrown: unknown[] = [];
    const onError = (error: unknown) => thrown.push(error);
    process.on('uncaughtException', onError);
    try {
      timers.schedule(10, () => {
        throw new Error('bad callback');
      });
      timers.schedule(10, () => log.push('still runs'));
      clock.advance(10);
      await flushMicrotasks();
      expect(log).toEqual(['still runs']);
      expect(thrown).toHaveLength(1);
      expect((thrown[0] as Error).message).toBe('bad callback');
    } finally {
      process.off('uncaughtException', onError);
    }
  });

  it('dispose drops every timer and refuses new ones', () => {
    const { clock, timers } = setup();
    const ref = timers.schedule(100, () => {
      throw new Error('must not fire');
    });
    timers.dispose();
    expect(timers.size()).toBe(0);
    expect(timers.isPending(ref)).toBe(false);
    expect(clock.pending()).toBe(0);
    expect(() => timers.schedule(1, () => {})).toThrow('schedule after dispose');
  });
});
