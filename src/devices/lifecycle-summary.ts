/**
 * The fleet's lifecycle at INFO as one line per interval instead of one line per device: 2,000
 * devices coming online are `devices: 2,000 of 2,000 online (2,000 came online), 2,000 connected`
 * rather than thousands of lines that scroll the UI's URL away. Going online and offline count
 * devices, not events (a device that flapped three times is one of each), and a restated offline
 * (a device already offline given a new reason) is no transition: after a host restart the line
 * said "0 online (+980), 2,040 offline" for a fleet of 2,000. Each device's own lines are at debug (and
 * in the device event log); warnings and errors about one device stay individual. A state
 * change counts only when its top-level state changes.
 *
 * Time goes through the runtime's clock, so a test runs it on a simulated one. No timer runs
 * while nothing happens: the first event of a quiet spell arms one, the summary disarms it.
 *
 * @example
 * const summary = createLifecycleSummary({ runtime, onlineNow: () => countOnline() });
 * summary.note('device.online', 'sensor-1');
 * // 5 s later: INFO devices: 1 of 1 online (1 came online)  online=1 wentOnline=1
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
  /** How many devices are online now (the line shows it beside the interval's change). */
  readonly onlineNow?: () => number;
  /** How many devices the fleet has now (the line says "N of M online"). */
  readonly devicesNow?: () => number;
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
  /** Devices that came online, and went offline, this interval. */
  const cameOnline = new Set<string>();
  const wentOffline = new Set<string>();
  let timer: ClockHandle | undefined;
  let stopped = false;

  const bump = (m: Map<string, number>, key: string) => m.set(key, (m.get(key) ?? 0) + 1);

  function flush(): void {
    if (timer !== undefined) runtime.clock.clearTimeout(timer);
    timer = undefined;
    if (counts.size === 0 && cameOnline.size === 0 && wentOffline.size === 0) return;
    const n = (kind: string) => counts.get(kind) ?? 0;
    const parts: string[] = [];
    const on = cameOnline.size;
    const off = wentOffline.size;
    const online = options.onlineNow?.();
    const total = options.devicesNow?.();
    if (on > 0 || off > 0) {
      const change = [
        ...(on > 0 ? [`${fmt(on)} came online`] : []),
        ...(off > 0 ? [`${fmt(off)} went offline`] : []),
      ].join(', ');
      if (online === undefined) parts.push(change);
      else parts.push(`${fmt(online)}${total === undefined ? '' : ` of ${fmt(total)}`} online (${change})`);
    }
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
      ...(total !== undefined ? { devices: total } : {}),
      wentOnline: on,
      wentOffline: off,
      added: n('device.added'),
      removed: n('device.removed'),
      stateChanges: n('device.state'),
      intervalMs,
    };
    counts.clear();
    entered.clear();
    cameOnline.clear();
    wentOffline.clear();
    log.info(`devices: ${parts.join(', ')}`, fields);
  }

  return {
    note(kind, deviceId, data) {
      if (!COUNTED.has(kind)) return;
      const field = (k: string) =>
        typeof data === 'object' && data !== null && k in data
          ? (data as Record<string, unknown>)[k]
          : undefined;
      if (kind === 'device.online' || kind === 'device.offline') {
        if (kind === 'device.offline' && field('restated') === true) return; // no transition
        (kind === 'device.online' ? cameOnline : wentOffline).add(deviceId ?? '');
        if (timer === undefined && !stopped) timer = runtime.clock.setTimeout(flush, intervalMs);
        return;
      }
      if (kind === 'device.state') {
        const text = (k: string) => String(field(k) ?? '');
        const top = (s: string) => s.split('.')[0] ?? s;
        const to = top(text('to'));
        // Moves inside one top-level state (connected.idle → connected.busy) are not lifecycle.
        if (to === '' || to === top(text('from'))) return;
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
