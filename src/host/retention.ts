/**
 * Retention: the app keeps telemetry, events and finished commands for a number of days, then
 * deletes them, once a minute after start and every hour after (`--retention-days`,
 * `--telemetry-retention-days`; none by default: everything is kept). Deletes run in small batches
 * ({@link Store.pruneHistory}), so ingest goes on between them; open commands are never deleted.
 *
 * @example
 * const retention = createRetention({ runtime, store, days: { telemetry: 30, events: 365, commands: 365 } });
 * retention.start();
 * await retention.runNow(); // { telemetry: 120000, events: 40, commands: 3 }
 */
import type { Runtime } from '../runtime/runtime.js';
import type { TimerRef } from '../runtime/timers.js';
import type { Store } from '../store/store.js';

const DAY = 24 * 3600_000;

export interface RetentionDays {
  readonly telemetry?: number;
  readonly events?: number;
  readonly commands?: number;
}

export interface Retention {
  /** A pass now; resolves to what it deleted. Passes never overlap. */
  runNow(): Promise<{ readonly telemetry: number; readonly events: number; readonly commands: number }>;
  start(): void;
  stop(): void;
}

export function createRetention(options: {
  readonly runtime: Pick<Runtime, 'clock' | 'logger' | 'timers'>;
  readonly store: Pick<Store, 'pruneHistory'>;
  readonly days: RetentionDays;
  /** Between passes; default one hour. */
  readonly intervalMs?: number;
  /** Before the first pass; default one minute. */
  readonly firstAfterMs?: number;
}): Retention {
  const { runtime, store, days } = options;
  const intervalMs = options.intervalMs ?? 3600_000;
  let timer: TimerRef | undefined;
  let stopped = true;
  let running: Promise<{ telemetry: number; events: number; commands: number }> | undefined;

  async function pass() {
    const now = runtime.clock.wallNow();
    const cut = (d: number | undefined) => (d === undefined ? undefined : now - d * DAY);
    const before = {
      ...(days.telemetry !== undefined ? { telemetry: cut(days.telemetry) } : {}),
      ...(days.events !== undefined ? { events: cut(days.events) } : {}),
      ...(days.commands !== undefined ? { commands: cut(days.commands) } : {}),
    };
    const deleted = await store.pruneHistory(before);
    if (deleted.telemetry + deleted.events + deleted.commands > 0)
      runtime.logger.info('retention: old history deleted', { ...deleted, days: { ...days } });
    return deleted;
  }

  const runNow = () => {
    running = (running ?? Promise.resolve()).then(pass, pass);
    return running;
  };

  const schedule = (delay: number) => {
    if (stopped) return;
    timer = runtime.timers.schedule(
      delay,
      () => {
        timer = undefined;
        void runNow()
          .catch((e: unknown) => runtime.logger.warn('retention pass failed', { error: String(e) }))
          .finally(() => schedule(intervalMs));
      },
      { label: 'retention' },
    );
  };

  return {
    runNow,
    start() {
      if (!stopped) return;
      if (days.telemetry === undefined && days.events === undefined && days.commands === undefined) return;
      stopped = false;
      schedule(options.firstAfterMs ?? 60_000);
    },
    stop() {
      stopped = true;
      if (timer) runtime.timers.cancel(timer);
      timer = undefined;
    },
  };
}
