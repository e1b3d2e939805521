/**
 * The device event log's writer, shared by the fleet, the link hub and every convention bridge:
 * events are batched (all appended in one turn go to the store in one call), and noisy ones are
 * rate-limited without losing count.
 *
 * - {@link DeviceEventLog.append} writes an event (batched); one that records a device's `event`
 *   message carries its (boot, seq), and the store keeps it at most once.
 * - {@link DeviceEventLog.limited} writes at most `maxPerWindow` events of one kind per device per
 *   window (the rule of every bad message, src/devices/bad-message-budget.ts); the rest are
 *   counted, and when the window closes one `device.eventsSuppressed` event says how many of which
 *   kind were left out. A babbling device cannot fill the disk, and the log still tells the truth
 *   about how much it babbled.
 * - When the key varies (a flood of distinct unknown device ids), at most `maxKeys` keys are
 *   tracked; past that the events of new keys are aggregated under one key per kind, so memory
 *   stays bounded and one summary names the count.
 *
 * @example
 * const events = createDeviceEventLog({ runtime, store });
 * events.append('device.online', 'pump-7', { via: 'mqtt' });
 * events.limited('device.badMessage', 'pump-7', { code: 'badJson', message: '…' });
 * await events.flush();
 */
import type { JsonValue } from '../lib/json.js';
import type { Runtime } from '../runtime/runtime.js';
import type { TimerRef } from '../runtime/timers.js';
import type { DeviceMessageId, Durability, EventInput, Store } from '../store/store.js';
import type { BadMessageLimit, BadMessageWindow } from './bad-message-budget.js';
import { admitBadMessage } from './bad-message-budget.js';

export interface DeviceEventLogOptions {
  readonly runtime: Runtime;
  readonly store: Pick<Store, 'appendEvents'>;
  /** Rate-limited events written per (device, kind) per window; default 10. */
  readonly maxPerWindow?: number;
  /** Default 60 000 ms. */
  readonly windowMs?: number;
  /** Distinct (device, kind) keys tracked at once; past it new keys share one per kind; default 10 000. */
  readonly maxKeys?: number;
}

export interface DeviceEventLogStats {
  /** Events handed to the store. */
  readonly written: number;
  /** Rate-limited events left out (each counted in a `device.eventsSuppressed` summary). */
  readonly suppressed: number;
  /** Events the store failed to write (logged as an error). */
  readonly failed: number;
}

export interface DeviceEventLog {
  /**
   * `deviceMessage`: the device's (boot, seq) when the event records its protocol `event` message;
   * the store then keeps it at most once (docs/protocol.md §8), a duplicate is skipped and counted
   * in the store's `stats().events`.
   */
  append(
    kind: string,
    deviceId: string | undefined,
    data: JsonValue,
    durability?: Durability,
    deviceMessage?: DeviceMessageId,
  ): void;
  /** Rate-limited per (device, kind): true when written, false when counted only. */
  limited(kind: string, deviceId: string | undefined, data: JsonValue): boolean;
  stats(): DeviceEventLogStats;
  /** Resolves when everything appended so far is committed. */
  flush(): Promise<void>;
  /** The store write in progress, if any (a caller that waits for several writers polls it). */
  pending(): Promise<void> | undefined;
  /** Writes the pending summaries now and flushes (on stop). */
  close(): Promise<void>;
}

/** A (device, kind)'s window of the bad-message budget, opened by its first event and closed by its timer. */
interface Window extends BadMessageWindow {
  readonly kind: string;
  readonly deviceId: string | undefined;
  /** Distinct devices folded into an aggregate key. */
  devices: number;
  timer: TimerRef | undefined;
}

/** Where events of new keys go once `maxKeys` are tracked. */
const AGGREGATE = '\u0000*';

/** The store side: events waiting for the next write, by durability, and what became of those written. */
interface Batches {
  full: EventInput[];
  normal: EventInput[];
  /** The store write in progress. */
  writing: Promise<void> | undefined;
  written: number;
  failed: number;
}

const DURABILITIES = ['full', 'normal'] as const;

function eventOf(
  at: number,
  kind: string,
  deviceId: string | undefined,
  data: JsonValue,
  deviceMessage: DeviceMessageId | undefined,
): EventInput {
  if (deviceId === undefined) return { at, kind, data };
  return deviceMessage === undefined
    ? { at, kind, deviceId, data }
    : { at, kind, deviceId, data, deviceMessage };
}

/**
 * Writes the batches until none is left: the events of one turn go in one store call per
 * durability (`full` first). A failed write is counted and reported, never retried.
 */
async function writeBatches(b: Batches, store: Pick<Store, 'appendEvents'>, runtime: Runtime): Promise<void> {
  await Promise.resolve(); // gather this turn's events into one write
  try {
    while (b.normal.length > 0 || b.full.length > 0) {
      for (const durability of DURABILITIES) {
        const batch = b[durability];
        if (batch.length === 0) continue;
        b[durability] = [];
        await store.appendEvents(batch, { durability }).then(
          () => {
            b.written += batch.length;
          },
          (error: unknown) => {
            b.failed += batch.length;
            runtime.report(`device events could not be stored (${batch.length} lost)`, error);
          },
        );
      }
    }
  } finally {
    b.writing = undefined;
  }
}

/** The `device.eventsSuppressed` event of a window that left events out. */
function summaryOf(w: Window, windowMs: number): JsonValue {
  return {
    kind: w.kind,
    suppressed: w.errorSuppressed,
    written: w.errorEvents,
    windowMs,
    ...(w.devices > 0 ? { devices: w.devices, note: 'aggregated over many device ids' } : {}),
  };
}

export function createDeviceEventLog(options: DeviceEventLogOptions): DeviceEventLog {
  const { runtime, store } = options;
  const windowMs = options.windowMs ?? 60_000;
  const limit: BadMessageLimit = { max: options.maxPerWindow ?? 10, windowMs };
  const maxKeys = options.maxKeys ?? 10_000;
  const windows = new Map<string, Window>();
  const batches: Batches = { full: [], normal: [], writing: undefined, written: 0, failed: 0 };
  let suppressed = 0;

  const now = () => runtime.clock.wallNow();

  function append(
    kind: string,
    deviceId: string | undefined,
    data: JsonValue,
    durability?: Durability,
    deviceMessage?: DeviceMessageId,
  ) {
    batches[durability === 'full' ? 'full' : 'normal'].push(
      eventOf(now(), kind, deviceId, data, deviceMessage),
    );
    batches.writing ??= writeBatches(batches, store, runtime);
  }

  function closeWindow(key: string, w: Window): void {
    if (w.timer) runtime.timers.cancel(w.timer);
    w.timer = undefined;
    windows.delete(key);
    if (w.errorSuppressed > 0) append('device.eventsSuppressed', w.deviceId, summaryOf(w, windowMs));
  }

  /** The window of a (device, kind), opened by its first event; past `maxKeys` keys, one per kind for them all. */
  function windowOf(kind: string, deviceId: string | undefined): Window {
    let key = `${deviceId ?? ''}\u0000${kind}`;
    let w = windows.get(key);
    const aggregate = !w && windows.size >= maxKeys;
    if (aggregate) {
      key = `${AGGREGATE}\u0000${kind}`;
      w = windows.get(key);
    }
    if (!w) {
      const fresh: Window = {
        kind,
        deviceId: aggregate ? undefined : deviceId,
        errorWindowStart: now(),
        errorEvents: 0,
        errorSuppressed: 0,
        devices: 0,
        timer: undefined,
      };
      fresh.timer = runtime.timers.schedule(windowMs, () => closeWindow(key, fresh), {
        label: 'device-event-log.window',
      });
      windows.set(key, fresh);
      w = fresh;
    }
    if (aggregate) w.devices++;
    return w;
  }

  async function flush(): Promise<void> {
    while (batches.writing) await batches.writing;
  }

  return {
    append,

    limited(kind, deviceId, data) {
      if (admitBadMessage(windowOf(kind, deviceId), now(), limit) === 'write') {
        append(kind, deviceId, data);
        return true;
      }
      suppressed++;
      return false;
    },

    stats: () => ({ written: batches.written, suppressed, failed: batches.failed }),
    flush,
    pending: () => batches.writing,

    async close() {
      for (const [key, w] of [...windows]) closeWindow(key, w);
      await flush();
    },
  };
}
