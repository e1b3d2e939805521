/**
 * The device event log's writer, shared by the fleet, the link hub and every convention bridge:
 * events are batched (all appended in one turn go to the store in one call), and noisy ones are
 * rate-limited without losing count.
 *
 * - {@link DeviceEventLog.append} writes an event (batched); one that records a device's `event`
 *   message carries its (boot, seq), and the store keeps it at most once.
 * - {@link DeviceEventLog.limited} writes at most `maxPerWindow` events of one kind per device per
 *   window; the rest are counted, and when the window closes one `device.eventsSuppressed` event
 *   says how many of which kind were left out. A babbling device cannot fill the disk, and the log
 *   still tells the truth about how much it babbled.
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

interface Window {
  readonly kind: string;
  readonly deviceId: string | undefined;
  readonly startedAt: number;
  written: number;
  suppressed: number;
  /** Distinct devices folded into an aggregate key. */
  devices: number;
  timer: TimerRef | undefined;
}

/** Where events of new keys go once `maxKeys` are tracked. */
const AGGREGATE = '\u0000*';

export function createDeviceEventLog(options: DeviceEventLogOptions): DeviceEventLog {
  const { runtime, store } = options;
  const maxPerWindow = options.maxPerWindow ?? 10;
  const windowMs = options.windowMs ?? 60_000;
  const maxKeys = options.maxKeys ?? 10_000;
  const windows = new Map<string, Window>();
  let normal: EventInput[] = [];
  let full: EventInput[] = [];
  let writing: Promise<void> | undefined;
  let written = 0;
  let suppressed = 0;
  let failed = 0;

  const now = () => runtime.clock.wallNow();

  function append(
    kind: string,
    deviceId: string | undefined,
    data: JsonValue,
    durability?: Durability,
    deviceMessage?: DeviceMessageId,
  ) {
    const e: EventInput =
      deviceId === undefined
        ? { at: now(), kind, data }
        : deviceMessage === undefined
          ? { at: now(), kind, deviceId, data }
          : { at: now(), kind, deviceId, data, deviceMessage };
    (durability === 'full' ? full : normal).push(e);
    writing ??= write();
  }

  async function write(): Promise<void> {
    await Promise.resolve(); // gather this turn's events into one write
    try {
      while (normal.length > 0 || full.length > 0) {
        for (const [batch, durability] of [
          [full, 'full'],
          [normal, 'normal'],
        ] as const) {
          if (batch.length === 0) continue;
          if (durability === 'full') full = [];
          else normal = [];
          await store.appendEvents(batch, { durability }).then(
            () => {
              written += batch.length;
            },
            (error: unknown) => {
              failed += batch.length;
              runtime.report(`device events could not be stored (${batch.length} lost)`, error);
            },
          );
        }
      }
    } finally {
      writing = undefined;
    }
  }

  function closeWindow(key: string, w: Window): void {
    if (w.timer) runtime.timers.cancel(w.timer);
    w.timer = undefined;
    windows.delete(key);
    if (w.suppressed === 0) return;
    append('device.eventsSuppressed', w.deviceId, {
      kind: w.kind,
      suppressed: w.suppressed,
      written: w.written,
      windowMs,
      ...(w.devices > 0 ? { devices: w.devices, note: 'aggregated over many device ids' } : {}),
    });
  }

  return {
    append,

    limited(kind, deviceId, data) {
      let key = `${deviceId ?? ''}\u0000${kind}`;
      let w = windows.get(key);
      let aggregate = false;
      if (!w && windows.size >= maxKeys) {
        key = `${AGGREGATE}\u0000${kind}`;
        w = windows.get(key);
        aggregate = true;
      }
      if (!w) {
        const fresh: Window = {
          kind,
          deviceId: aggregate ? undefined : deviceId,
          startedAt: now(),
          written: 0,
          suppressed: 0,
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
      if (w.written < maxPerWindow) {
        w.written++;
        append(kind, deviceId, data);
        return true;
      }
      w.suppressed++;
      suppressed++;
      return false;
    },

    stats: () => ({ written, suppressed, failed }),

    async flush() {
      while (writing) await writing;
    },

    pending: () => writing,

    async close() {
      for (const [key, w] of [...windows]) closeWindow(key, w);
      while (writing) await writing;
    },
  };
}
