/**
 * What every part of the app's start shares: the options, the runtime, the logger, and the stop
 * steps. Each part pushes the undoing of what it started as soon as it started it, so a start
 * that fails half-way unwinds exactly what was up, and the app's stop unwinds it all in reverse
 * start order: the links and devices stop while the broker and the store still serve them, and the
 * store, opened first, closes last.
 *
 * @example
 * const stops = createStopSteps(log);
 * stops.push(() => store.close());
 * await stops.unwind(); // each step in reverse; a failing step is logged, the next still runs
 */
import type { Logger, Runtime } from '../../runtime/runtime.js';
import type { AppOptions } from '../app.js';

export interface StopSteps {
  push(step: () => Promise<void>): void;
  /** Runs the steps pushed so far, last first, and forgets them; a failure is logged, never thrown. */
  unwind(): Promise<void>;
}

export interface AppSetup {
  readonly options: AppOptions;
  readonly runtime: Runtime;
  readonly log: Logger;
  readonly stops: StopSteps;
}

export function createStopSteps(log: Logger): StopSteps {
  const stack: (() => Promise<void>)[] = [];
  return {
    push: (step) => {
      stack.push(step);
    },
    unwind: async () => {
      for (const stop of stack.splice(0).reverse())
        await stop().catch((error: unknown) => log.error('shutdown step failed', { error }));
    },
  };
}
