/**
 * Bad messages from devices, counted and written without letting a babbling device (or a flood
 * of strangers) fill the event log: every one is counted in its session (`s.errors`); written
 * one by one at most `maxPerDevice` a minute per device (src/devices/bad-message-budget.ts, the
 * rule every convention uses) and `maxAll` a minute across devices (20 of those also logged); past
 * a device's budget its count is written as one event when its minute ends; past the hub's,
 * everything is summed up in one event and one log line by code.
 *
 * @example
 * const bad = createBadMessageCounter({ runtime, logEvent, maxPerDevice: 10, maxAll: 100 });
 * bad.count('pump-7', session, { code: 'badJson', message: '…' }, 'mqtt');
 */
import type { BadMessageLimit, BadMessageWindow } from '../devices/bad-message-budget.js';
import { admitBadMessage } from '../devices/bad-message-budget.js';
import type { JsonValue } from '../lib/json.js';
import type { Runtime } from '../runtime/runtime.js';
import type { Session } from './link-session.js';
import { MINUTE_MS } from './minute-budget.js';

/** The part of a device's session the counter keeps: its counts by code, and its budget's window. */
export type BadMessageSession = Pick<Session, 'errors'> & BadMessageWindow;

export interface BadMessageCounterOptions {
  readonly runtime: Runtime;
  /** Writes one event to the device event log. */
  logEvent(kind: string, deviceId: string | undefined, data: JsonValue): void;
  /** Events written one by one per device per minute. */
  readonly maxPerDevice: number;
  /** Events written one by one per minute across devices. */
  readonly maxAll: number;
}

export interface BadMessageCounter {
  count(id: string, s: BadMessageSession, error: { code: string; message: string }, via: string): void;
}

/** Bad-message log lines per minute across all devices (the events have their own budget). */
const MAX_ERROR_LINES_ALL = 20;

interface ErrorWindow {
  /** Events written one by one this minute. */
  written: number;
  /** Log lines asked for this minute (past {@link MAX_ERROR_LINES_ALL}, not written). */
  logged: number;
  /** Bad messages past the budget, summed up when the minute ends. */
  folded: number;
  byCode: Record<string, number>;
  devices: Set<string>;
  fold(id: string, code: string, count: number): void;
}

export function createBadMessageCounter(options: BadMessageCounterOptions): BadMessageCounter {
  const { runtime, logEvent } = options;
  const log = runtime.logger;
  const perDevice: BadMessageLimit = { max: options.maxPerDevice, windowMs: MINUTE_MS };
  const maxErrorEventsAll = options.maxAll;
  const now = () => runtime.clock.wallNow();
  let errorsThisMinute: ErrorWindow | undefined;

  /**
   * Every bad message is counted (`s.errors`). Written one by one: at most `maxPerDevice` a
   * minute per device and `maxAll` a minute across devices (20 of those also logged).
   * Past a device's budget its count is written as one event of its own when its minute ends;
   * past the hub's, everything is summed up in one event and one log line by code.
   */
  function count(
    id: string,
    s: BadMessageSession,
    error: { code: string; message: string },
    via: string,
  ): void {
    s.errors[error.code] = (s.errors[error.code] ?? 0) + 1;
    const t = now();
    const all = errorWindow();
    switch (admitBadMessage(s, t, perDevice, all.written >= maxErrorEventsAll)) {
      case 'firstSuppressed':
        // Past the device's budget: summed up for it once when its minute ends.
        runtime.clock.setTimeout(
          () => summarizeDevice(id, s, via),
          Math.max(0, s.errorWindowStart + MINUTE_MS - t),
        );
        return;
      case 'suppressed':
        return;
      case 'sharedFull':
        all.fold(id, error.code, 1);
        return;
      case 'write':
        all.written++;
        logEvent('device.badMessage', id, { code: error.code, message: error.message.slice(0, 300), via });
        if (all.logged++ < MAX_ERROR_LINES_ALL)
          log.warn('bad message from device', {
            deviceId: id,
            code: error.code,
            via,
            message: error.message,
          });
    }
  }

  /** A device's minute ended with bad messages past its budget: one event says how many. */
  function summarizeDevice(id: string, s: BadMessageSession, via: string): void {
    const count = s.errorSuppressed;
    s.errorSuppressed = 0;
    if (count === 0) return;
    const w = errorWindow();
    if (w.written >= maxErrorEventsAll) {
      w.fold(id, 'suppressedByDevice', count);
      return;
    }
    w.written++;
    logEvent('device.badMessagesSuppressed', id, { count, windowMs: MINUTE_MS, via });
    if (w.logged++ < MAX_ERROR_LINES_ALL)
      log.warn('more bad messages from device than written one by one', { deviceId: id, count, via });
  }

  /** The minute's budget of bad messages written one by one across devices, and what it folded. */
  function errorWindow(): ErrorWindow {
    if (errorsThisMinute) return errorsThisMinute;
    const w: ErrorWindow = {
      written: 0,
      logged: 0,
      folded: 0,
      byCode: {},
      devices: new Set(),
      fold(id, code, count) {
        w.folded += count;
        w.byCode[code] = (w.byCode[code] ?? 0) + count;
        if (w.devices.size < 100_000) w.devices.add(id);
      },
    };
    errorsThisMinute = w;
    runtime.clock.setTimeout(() => {
      errorsThisMinute = undefined;
      if (w.folded === 0 && w.logged <= MAX_ERROR_LINES_ALL) return;
      const summary = { count: w.folded, devices: w.devices.size, byCode: w.byCode, windowMs: MINUTE_MS };
      if (w.folded > 0) logEvent('device.badMessagesSummary', undefined, summary);
      log.warn('more bad messages than written one by one in the last minute', {
        ...summary,
        notLogged: Math.max(0, w.logged - MAX_ERROR_LINES_ALL),
      });
    }, MINUTE_MS);
    return w;
  }

  return { count };
}
