/**
 * The runtime's one source of time: a monotonic clock plus a single host timer.
 *
 * Everything that waits (xstate `after` delays, gen_statem timeouts, shutdown timers, backoff)
 * goes through a {@link TimerService} built on a Clock, never through `setTimeout` directly, so
 * tests run on {@link createSimulatedClock} with no sleeps.
 *
 * @example
 * const clock = createSimulatedClock();
 * clock.setTimeout(() => console.log('fired'), 100);
 * clock.advance(100); // logs 'fired'
 */
export interface Clock {
  /** Monotonic milliseconds; only differences are meaningful. */
  now(): number;
  /** Wall-clock epoch milliseconds, used only to persist absolute deadlines across app restarts. */
  wallNow(): number;
  setTimeout(fn: () => void, delayMs: number): ClockHandle;
  clearTimeout(handle: ClockHandle): void;
}

export type ClockHandle = { readonly __clockHandle: true };

/** The real clock: `performance.now()` and the host's timers. */
export function createRealClock(): Clock {
  return {
    now: () => performance.now(),
    wallNow: () => Date.now(),
    setTimeout: (fn, delayMs) => {
      const handle = setTimeout(fn, Math.max(0, delayMs));
      // A pending runtime timer must not keep a finished CLI or test process alive.
      handle.unref?.();
      return handle as unknown as ClockHandle;
    },
    clearTimeout: (handle) => clearTimeout(handle as unknown as NodeJS.Timeout),
  };
}

export interface SimulatedClock extends Clock {
  /**
   * Moves time forward by `ms`, firing every due timer in deadline order (timers scheduled by
   * a firing timer also fire if they fall inside the window).
   */
  advance(ms: number): void;
  /** Like {@link advance}, but lets promise continuations run after each fired timer. */
  advanceAsync(ms: number): Promise<void>;
  /** Number of timers still pending. */
  pending(): number;
}

interface SimTimer {
  at: number;
  seq: number;
  fn: () => void;
}

/**
 * A clock that only moves when told to. `wallNow()` is `wallStartMs + now()`.
 */
export function createSimulatedClock(
  options: { startMs?: number; wallStartMs?: number } = {},
): SimulatedClock {
  let now = options.startMs ?? 0;
  const wallOffset = (options.wallStartMs ?? 1_700_000_000_000) - now;
  let seq = 0;
  const timers = new Map<number, SimTimer>();

  const nextDue = (limit: number): [number, SimTimer] | undefined => {
    let best: [number, SimTimer] | undefined;
    for (const entry of timers) {
      const t = entry[1];
      if (t.at > limit) continue;
      if (!best || t.at < best[1].at || (t.at === best[1].at && t.seq < best[1].seq)) best = entry;
    }
    return best;
  };

  const clock: SimulatedClock = {
    now: () => now,
    wallNow: () => wallOffset + now,
    setTimeout(fn, delayMs) {
      const id = ++seq;
      timers.set(id, { at: now + Math.max(0, delayMs), seq: id, fn });
      return id as unknown as ClockHandle;
    },
    clearTimeout(handle) {
      timers.delete(handle as unknown as number);
    },
    advance(ms) {
      if (ms < 0) throw new RangeError('advance(ms): ms must be >= 0');
      const target = now + ms;
      for (let due = nextDue(target); due; due = nextDue(target)) {
        timers.delete(due[0]);
        now = Math.max(now, due[1].at);
        due[1].fn();
      }
      now = target;
    },
    async advanceAsync(ms) {
      if (ms < 0) throw new RangeError('advanceAsync(ms): ms must be >= 0');
      const target = now + ms;
      await flushMicrotasks();
      for (let due = nextDue(target); due; due = nextDue(target)) {
        timers.delete(due[0]);
        now = Math.max(now, due[1].at);
        due[1].fn();
        await flushMicrotasks();
      }
      now = target;
      await flushMicrotasks();
    },
    pending: () => timers.size,
  };
  return clock;
}

/**
 * Lets every queued promise continuation run: one macrotask turn drains the whole microtask
 * queue, whatever the depth of the promise chains. Simulated time does not move.
 */
export async function flushMicrotasks(turns = 2): Promise<void> {
  for (let i = 0; i < turns; i++) await new Promise<void>((resolve) => setImmediate(resolve));
}
