/**
 * One runtime instance: clock, shared timers, the event stream, the registry, pids and the
 * error reporter. No module-level singletons: tests run many isolated runtimes side by side.
 *
 * @example
 * const rt = createRuntime({ clock: createSimulatedClock() });
 * const sup = await startSupervisor(rt, { strategy: 'oneForOne', children: [...] });
 */
import type { Clock } from './clock.js';
import { createRealClock } from './clock.js';
import type { EventStream } from './events.js';
import { createEventStream } from './events.js';
import { toError } from './exit-reason.js';
import type { Pid } from './process.js';
import type { TimerService } from './timers.js';
import { createTimerService } from './timers.js';

export interface Logger {
  debug(message: string, fields?: Record<string, unknown>): void;
  info(message: string, fields?: Record<string, unknown>): void;
  warn(message: string, fields?: Record<string, unknown>): void;
  error(message: string, fields?: Record<string, unknown>): void;
}

export const silentLogger: Logger = { debug() {}, info() {}, warn() {}, error() {} };

export interface Runtime {
  readonly clock: Clock;
  readonly timers: TimerService;
  readonly events: EventStream;
  readonly logger: Logger;
  nextPid(): Pid;
  /** The one reporter: logs and emits an error that no caller can handle. Never throws. */
  report(message: string, cause?: unknown, pid?: Pid): void;
  /** Stops the shared timers. Processes should be stopped first (stop the root supervisor). */
  dispose(): void;
}

export interface RuntimeOptions {
  clock?: Clock;
  logger?: Logger;
}

export function createRuntime(options: RuntimeOptions = {}): Runtime {
  const clock = options.clock ?? createRealClock();
  const logger = options.logger ?? silentLogger;
  const timers = createTimerService(clock);
  const events = createEventStream(() => clock.wallNow());
  let pidCounter = 0;
  return {
    clock,
    timers,
    events,
    logger,
    nextPid: () => ++pidCounter as Pid,
    report(message, cause, pid) {
      const error = cause === undefined ? undefined : toError(cause);
      logger.error(message, { pid, error: error?.message, stack: error?.stack });
      if (events.active) events.emit({ type: 'report', level: 'error', message, pid, error });
    },
    dispose() {
      timers.dispose();
    },
  };
}
