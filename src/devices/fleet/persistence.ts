/**
 * The fleet's two writers, each coalescing into few store calls: the device event log (the
 * shared writer of src/devices/device-event-log.ts: the events of one turn in one append) and the
 * snapshot writer (latest wins, one row per device,
 * statelyai/xstate#5077, with the absolute deadline of every running timeout).
 */

import type { Runtime } from '../../runtime/runtime.js';
import type { JsonValue, Store } from '../../store/store.js';
import { createDeviceEventLog } from '../device-event-log.js';
import type { Entry, StoredState } from './context.js';

export interface EventWriter {
  readonly logEvent: (kind: string, deviceId: string | undefined, data: JsonValue) => void;
  /** The write in progress, if any. */
  pending(): Promise<void> | undefined;
}

export function createEventWriter(runtime: Runtime, store: Store): EventWriter {
  // The shared device event log writer: the events of one turn in one append.
  const log = createDeviceEventLog({ runtime, store });
  return {
    logEvent: (kind, deviceId, data) => log.append(kind, deviceId, data),
    pending: () => log.pending(),
  };
}

export interface SnapshotWriter {
  /** The device's snapshot changed: save its latest persisted state soon. */
  readonly markDirty: (e: Entry) => void;
  /** Saves the latest state of every given device now (before their machines go away). */
  saveAll(entries: Iterable<Entry>): Promise<void>;
  /** The write in progress, if any. */
  pending(): Promise<void> | undefined;
}

export function createSnapshotWriter(runtime: Runtime, store: Store): SnapshotWriter {
  const dirty = new Set<Entry>();
  let writing: Promise<void> | undefined;
  const markDirty = (e: Entry) => {
    dirty.add(e);
    writing ??= writeSnapshots();
  };
  async function writeSnapshots(): Promise<void> {
    // Yield first: the caller assigns this promise to `writing`, which `finally` must clear after.
    await Promise.resolve();
    try {
      while (dirty.size > 0) {
        const batch = [...dirty];
        dirty.clear();
        await Promise.all(batch.map(save));
      }
    } finally {
      writing = undefined;
    }
  }
  const save = (e: Entry): Promise<void> | undefined => {
    const state = e.machine?.persistedState();
    if (!state || e.removed) return undefined;
    const stored: StoredState = {
      machine: state.snapshot as JsonValue,
      timers: state.timers,
      stateEnteredAt: e.stateEnteredAt,
    };
    return store
      .saveSnapshot({
        deviceId: e.record.id,
        kind: e.kind.kind,
        snapshot: stored as unknown as JsonValue,
        deadlines: state.timers.map((t) => ({
          label: `${t.kind}:${t.id}`,
          wallDeadlineMs: t.wallDeadlineMs,
          delayMs: t.delayMs,
        })),
        version: e.kind.snapshotVersion,
      })
      .catch((error: unknown) => runtime.report(`saving the snapshot of ${e.record.id} failed`, error));
  };
  return {
    markDirty,
    async saveAll(entries) {
      for (const e of entries) if (e.machine?.alive) dirty.add(e);
      writing ??= writeSnapshots();
      await writing;
    },
    pending: () => writing,
  };
}
