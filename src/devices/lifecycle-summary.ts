/**
 * The fleet's lifecycle at INFO as one line per interval instead of one line per device: 2,000
 * devices coming online are `devices: 2,000 online (+2,000), 2,000 connected` rather than
 * thousands of lines that scroll the UI's URL away. Each device's own lines are at debug (and
 * in the device event log); warnings and errors about one device stay individual. A state
 * change counts only when its top-level state changes.
 *
 * Time goes through the runtime's clock, so a test runs it on a simulated one. No timer runs
 * while nothing happens: the first event of a quiet spell arms one, the summary disarms it.
 *
 * @example
 * const summary = createLifecycleSummary({ runtime, onlineNow: () => countOnline() });
 * summary.note('device.online', 'sensor-1');
 * // 5 s later: INFO devices: 1 online (+1)  online=1 wentOnline=1
 */
import type { ClockHandle } from '../runtime/clock.js';
import type { Runtime } from '../runtime/runtime.js';

/** Device event kinds the summary counts (the device event log's kinds); others are ignored. */
const COUNTED = new Set([
  'device.online',
  'device.offline',
  'device.added',
  'device.removed',
  'device.crashed',
  'device.failed',
  'device.restarted',
  'device.state',
]);

export interface LifecycleSummaryOptions {
  readonly runtime: Runtime;
  /** Length of one summary interval; default 5000. */
  readonly intervalMs?: number;
  /** How many devices are online now (the line shows the total beside the interval's change). */
  readonly onlineNow?: () => number;
}

export interface LifecycleSummary {
  /**
   * Counts one device event (`device.online`, `device.state` with `{ from, to }`, …); the INFO
   * line follows at the end of the interval. The per-device line is its emitter's, at debug.
   */
  note(kind: string, deviceId: string | undefined, data?: unknown): void;
  /** Logs the summary of what was counted so far now (nothing when nothing happened). */
  flush(): void;
  /** Logs what is left and disarms the timer. */
  stop(): void;
}

const fmt = (n: number) => n.toLocaleString('en-US');

export function createLifecycleSummary(options: LifecycleSummaryOptions): LifecycleSummary {
  const { runtime } = options;
  const intervalMs = options.intervalMs ?? 5000;
  const log = runtime.logger;
  const counts = new Map<string, number>();
  /** Top-level state entered → devices that entered it this interval. */
  const entered = new Map<string, number>();
  let timer: ClockHandle | undefined;
  let stopped = false;

  const bump = (m: Map<string, number>, key: string) => m.set(key, (m.get(key) ?? 0) + 1);

  function flush(): void {
    if (timer !== undefined) runtime.clock.clearTimeout(timer);
    timer = undefined;
    if (counts.size === 0) return;
    const n = (kind: string) => counts.get(kind) ?? 0;
    const parts: string[] = [];
    const on = n('device.online');
    const off = n('device.offline');
    const online = options.onlineNow?.();
    if (online !== undefined && (on > 0 || off > 0)) parts.push(`${fmt(online)} online (+${fmt(on)})`);
    else if (on > 0) parts.push(`${fmt(on)} online`);
    if (off > 0) parts.push(`${fmt(off)} offline`);
    const words: [string, string][] = [
      ['device.added', 'added'],
      ['device.removed', 'removed'],
      ['device.restarted', 'restarted'],
      ['device.crashed', 'crashed'],
      ['device.failed', 'failed'],
    ];
    for (const [kind, word] of words) if (n(kind) > 0) parts.push(`${fmt(n(kind))} ${word}`);
    const states = [...entered].sort((a, b) => b[1] - a[1]);
    for (const [state, count] of states) parts.push(`${fmt(count)} ${state}`);
    const fields: Record<string, unknown> = {
      ...(online !== undefined ? { online } : {}),
      wentOnline: on,
      wentOffline: off,
      added: n('device.added'),
      removed: n('device.removed'),
      stateChanges: n('device.state'),
      intervalMs,
    };
    counts.clear();
    entered.clear();
    log.info(`devices: ${parts.join(', ')}`, fields);
  }

  return {
    note(kind, _deviceId, data) {
      if (!COUNTED.has(kind)) return;
      if (kind === 'device.state') {
        const field = (k: string) =>
          typeof data === 'object' && data !== null && k in data
            ? String((data as Record<string, unknown>)[k])
            : '';
        const top = (s: string) => s.split('.')[0] ?? s;
        const to = top(field('to'));
        // Moves inside one top-level state (connected.idle → connected.busy) are not lifecycle.
        if (to === '' || to === top(field('from'))) return;
        bump(entered, to);
      }
      bump(counts, kind);
      if (timer === undefined && !stopped) timer = runtime.clock.setTimeout(flush, intervalMs);
    },
    flush,
    stop() {
      stopped = true;
      flush();
    },
  };
}
